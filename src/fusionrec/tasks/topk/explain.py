"""Top-K explanations: the attention weights behind one (user, item) score, labelled by modality, and
region attention laid over the item's image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusionrec.errors import FusionrecError
from fusionrec.models.base import Recommender
from fusionrec.render import heatmap, region_overlay
from fusionrec.tasks.base import Explanation, WeightGrid, labelled

MODALITY_WEIGHT_KEYS = ("modality_weights", "modalities")


def explain_pair(model: Recommender, dataset: Any, user: int, item: int, out_dir: Path | None) -> Explanation:
    """What ``model.explain`` returns for (``user``, ``item``) (internal indices). Weight vectors whose
    length matches the model's modality names are labelled by modality; a ``regions`` vector is drawn
    over the item's image (``items.image_path``) as a PNG in ``out_dir``."""
    users, items = torch.tensor([user]), torch.tensor([item])
    with torch.no_grad():
        score = float(model.scorer()(users, items)[0, 0])
        weights = model.explain(users, items)
    subject = f"user {dataset.user_ids[user]}, item {dataset.item_ids[item]}"
    if weights is None:
        raise FusionrecError(
            f"{type(model).__name__} has no attention to explain; try a fusion model (fusionrec list models)"
        )
    names = _weight_names(model)
    result = Explanation(subject, score)
    text = getattr(model, "explain_text", None)  # models that explain in words (VECF's generated review)
    sentences = text(users, items) if callable(text) else None
    if sentences:
        result.details["generated review"] = sentences[0]
    for key, value in weights.items():
        vector = value.detach().float().reshape(value.shape[0], -1)[0].numpy()
        if key == "regions" and out_dir is not None:
            over_image = image_regions(model, vector)
            if over_image is not None:
                path = region_overlay(
                    dataset,
                    item,
                    over_image,
                    Path(out_dir) / f"explain-u{dataset.user_ids[user]}-i{dataset.item_ids[item]}.png",
                )
                if path:
                    result.images.append(path)
        if names and len(vector) == len(names):
            result.weights[key] = labelled(names, vector.tolist())
        else:
            result.vectors[key] = [round(float(w), 6) for w in vector]
    return result


def explain_recommendations(
    model: Recommender, dataset: Any, user: int, items: list[int], out_dir: Path | None
) -> Explanation:
    """The modality weights behind each of ``items`` (a user's recommendations, best first) as a grid
    (rows: items, columns: modalities), drawn as a heat map in ``out_dir``."""
    names = _weight_names(model)
    users, candidates = torch.full((len(items),), user), torch.tensor(items)
    with torch.no_grad():
        weights = model.explain(users, candidates)
    if weights is None:
        raise FusionrecError(
            f"{type(model).__name__} has no attention to explain; try a fusion model (fusionrec list models)"
        )
    value = next(
        (
            weights[key]
            for key in MODALITY_WEIGHT_KEYS
            if key in weights and weights[key].dim() == 2 and weights[key].shape[1] == len(names)
        ),
        None,
    )
    if value is None:
        raise FusionrecError(
            f"{type(model).__name__} has no per-modality weights for its recommendations; "
            "pass an item (--item) to see the attention it has"
        )
    titles = dataset.item_titles()
    rows = [(titles[i] if titles else str(dataset.item_ids[i]))[:40] for i in items]
    values = value.float().numpy()
    raw_user = dataset.user_ids[user]
    result = Explanation(f"user {raw_user}: the modality weights behind its top {len(items)} recommendations")
    result.grids["modality weights per recommendation"] = WeightGrid(rows, names, values.round(4).tolist())
    if out_dir is not None:
        result.images.append(
            heatmap(
                values,
                rows,
                Path(out_dir) / f"modalities-u{raw_user}.png",
                f"{type(model).__name__}: user {raw_user}, modality weight per recommendation",
                columns=names,
                row_axis="recommended item (best first)",
                column_axis="modality",
            )
        )
    return result


def top_modalities(model: Any, users: torch.Tensor, items: torch.Tensor) -> list[tuple[str, float] | None]:
    """Per (user, item) pair, the modality with the largest attention weight and that weight.

    Reads the first of ``MODALITY_WEIGHT_KEYS`` that the model's ``explain`` returns with one
    weight per ``modality_names`` entry; None per pair for models without modality weights."""
    names = _weight_names(model)
    with torch.no_grad():
        weights = model.explain(users, items) if names else None
    for key in MODALITY_WEIGHT_KEYS:
        value = (weights or {}).get(key)
        if value is not None and value.dim() == 2 and value.shape[1] == len(names):
            best = value.float().argmax(dim=1)
            return [(names[b], float(value[r, b])) for r, b in enumerate(best.tolist())]
    return [None] * len(users)


def _weight_names(model: Any) -> list[str]:
    """What a model's per-modality weight vectors are over: ``explain_names`` when the model has
    extra views (e.g. MCPTR's co-interaction graph), else ``modality_names``."""
    return list(getattr(model, "explain_names", None) or getattr(model, "modality_names", None) or [])


def image_regions(model: Any, weights: np.ndarray) -> np.ndarray | None:
    """The part of a region-attention vector that lies over image regions (renormalised), using the
    model's ``region_modality_names``; the whole vector when the model does not name its regions."""
    names = getattr(model, "region_modality_names", None)
    if names is None:
        return weights
    keep = np.array(["image" in str(n) for n in names])
    if len(keep) != len(weights) or not keep.any():
        return None
    part = weights[keep]
    return part / max(float(part.sum()), 1e-12)
