"""Turning a model's attention into explanations: per-pair modality weights and region heat maps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusionrec.errors import FusionrecError


def explain_pair(run: Any, user: str, item: str, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Attention weights behind the score of (user, item) for a loaded run (``fusionrec.api.load_run``).

    Returns ``{"score", "weights": {name: list | {label: weight}}, "image": path or None}``.
    Vectors whose length matches the model's ``modality_names`` are labelled by modality. A
    ``regions`` entry is laid over the item's image (``items.image_path``) as a PNG in ``out_dir``.
    """
    ds = run.dataset
    u = _index(ds.user_ids, user, "user", ds.name)
    i = _index(ds.item_ids, item, "item", ds.name)
    users, items = torch.tensor([u]), torch.tensor([i])
    with torch.no_grad():
        score = float(run.model.scorer()(users, items)[0, 0])
        weights = run.model.explain(users, items)
    if weights is None:
        raise FusionrecError(f"model {run.record['model']!r} has no attention to explain; try a fusion model "
                             "(fusionrec list models)")
    names = _weight_names(run.model)
    shown: dict[str, Any] = {}
    image_path = None
    for key, value in weights.items():
        vector = value.detach().float().reshape(value.shape[0], -1)[0].numpy()
        if key == "regions" and out_dir is not None:
            image_regions = _image_regions(run.model, vector)
            if image_regions is not None:
                image_path = region_overlay(ds, i, image_regions, Path(out_dir) / f"explain-u{user}-i{item}.png")
        if names and len(vector) == len(names):
            shown[key] = {n: float(w) for n, w in zip(names, vector)}
        else:
            shown[key] = [round(float(w), 6) for w in vector]
    return {"user": user, "item": item, "score": score, "weights": shown, "image": image_path}


MODALITY_WEIGHT_KEYS = ("modality_weights", "modalities")


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


def _image_regions(model: Any, weights: np.ndarray) -> np.ndarray | None:
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


def sequence_attention(run: Any, user: str, out_dir: str | Path | None = None, layer: int = -1) -> dict[str, Any]:
    """The attention map of a sequential run over ``user``'s sequence (the one behind its next
    recommendation): averaged over heads of ``layer``; with ``out_dir``, a PNG heat map with item titles.

    Returns ``{"user", "items": [raw ids], "titles", "attention": (L, L) list, "image": path or None}``
    (padding slots dropped; BERT4Rec-style models have one extra last slot, ``[next]``, the slot
    being predicted)."""
    from fusionrec.api import run_task

    ds = run.dataset
    u = _index(ds.user_ids, user, "user", ds.name)
    maps = run_task(run).explain(run.model, torch.tensor([u]))
    if "attention" not in maps:
        raise FusionrecError(f"model {run.record['model']!r} returns no attention map to draw")
    tokens = maps["items"][0]  # (L,)
    keep = (tokens >= 0).nonzero().flatten()
    attention = maps["attention"][layer, 0].float().mean(0)[keep][:, keep].numpy()  # (L', L')
    titles = ds.item_titles()
    labels, raw = [], []
    for t in tokens[keep].tolist():
        if t >= ds.num_items:
            labels.append("[next]")
            raw.append("[next]")
        else:
            raw.append(str(ds.item_ids[t]))
            labels.append((titles[t] if titles else raw[-1])[:28])
    image = None
    if out_dir is not None:
        image = _heatmap(attention, labels, Path(out_dir) / f"attention-u{user}.png",
                         f"{run.record['model']}: user {user}, layer {layer % len(maps['attention'])}, mean over heads")
    return {"user": user, "items": raw, "titles": labels, "attention": attention.tolist(), "image": image}


def _heatmap(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FusionrecError("drawing attention maps needs matplotlib: pip install 'fusionrec[bench]'") from None
    size = max(4.0, 0.28 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(matrix, cmap="viridis", aspect="equal")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("attended item (key)")
    ax.set_ylabel("position (query)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def region_overlay(dataset: Any, item: int, region_weights: np.ndarray, path: Path) -> str | None:
    """Write the item image with a square grid of region weights blended over it; None without an image."""
    items = dataset.items
    if items is None or "image_path" not in items or not isinstance(items["image_path"].iloc[item], str):
        return None
    side = int(round(math.sqrt(len(region_weights))))
    if side * side != len(region_weights):
        return None
    try:
        from PIL import Image
    except ImportError:
        raise FusionrecError("writing region heat maps needs Pillow: pip install 'fusionrec[vision]'") from None
    image = Image.open(items["image_path"].iloc[item]).convert("RGB")
    scale = max(1, 400 // max(image.size[1], 1))  # small posters are upscaled so the grid stays visible
    image = image.resize((image.size[0] * scale, image.size[1] * scale), Image.BICUBIC)
    grid = region_weights.reshape(side, side)
    grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-12)  # (side, side) in [0, 1]
    heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8), mode="L").resize(image.size, Image.BILINEAR),
                      dtype=np.float32)[..., None] / 255.0  # (H, W, 1)
    colour = np.concatenate([np.clip(2 * heat, 0, 1), np.clip(2 * heat - 1, 0, 1), np.zeros_like(heat)], -1)  # black-red-yellow
    base = np.asarray(image, dtype=np.float32) / 255.0
    alpha = 0.25 + 0.5 * heat  # the most attended regions are the most tinted
    blended = ((1 - alpha) * base * (0.4 + 0.6 * heat) + alpha * colour).clip(0, 1)  # unattended parts dimmed
    overlay = Image.fromarray((blended * 255).astype(np.uint8))
    canvas = Image.new("RGB", (image.size[0] * 2 + 8, image.size[1]), "white")  # original | attention
    canvas.paste(image, (0, 0))
    canvas.paste(overlay, (image.size[0] + 8, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return str(path)


def _index(ids: np.ndarray, raw: str, what: str, data: str) -> int:
    matches = np.flatnonzero(ids.astype(str) == str(raw))
    if not len(matches):
        raise FusionrecError(f"unknown {what} {raw!r} in {data} (ids look like: {', '.join(map(str, ids[:5]))}, ...)")
    return int(matches[0])
