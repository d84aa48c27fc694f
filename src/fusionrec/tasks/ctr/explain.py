"""CMBF's cross-attention for one row, as labelled weights, a grid and heat maps.

The text side's tokens are named after their field and value (``occupation=engineer``,
``title[1]=star``); the image side's after their region (``region r3c4`` of a 7 x 7 grid) or, for a
global vector turned into tokens, their index (``image token 12``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.models.ctr.common import CTRBatch
from fusionrec.render import heatmap, region_overlay
from fusionrec.tasks.base import Explanation, WeightGrid, labelled

TOP = 10


def text_token_labels(model: Any, task: Any, batch: CTRBatch, row: int = 0) -> tuple[list[str], np.ndarray]:
    """Labels of the model's text tokens for ``row`` of ``batch`` and which of them are real (not padding)."""
    infos = {f.name: f for f in task.layout.fields}
    codes: dict[str, Any] = {}
    categorical = [f.name for f in task.layout.of_kind("categorical")]
    sequences = [f.name for f in task.layout.of_kind("sequence")]
    for j, name in enumerate(categorical):
        codes[name] = int(batch.categorical[row, j])
    for j, name in enumerate(sequences):
        codes[name] = batch.sequences[j][row].tolist()
    numeric = [f.name for f in task.layout.of_kind("numeric")]
    contents = [f.name for f in task.layout.of_kind("content")]
    labels, real = [], []
    for name, position in model.text_tokens:
        info = infos[name]
        if name in numeric:
            labels.append(f"{name}={float(batch.numeric[row, numeric.index(name)]):+.2f} sd")
            real.append(True)
        elif name in contents:
            present = bool(batch.content_masks[contents.index(name)][row])
            labels.append(f"{name} vector")
            real.append(present)
        elif name in sequences:
            code = codes[name][position]
            labels.append(f"{name}[{position}]={info.labels[code]}")
            real.append(code > 0)
        else:
            labels.append(f"{name}={info.labels[codes[name]]}")
            real.append(True)
    return labels, np.asarray(real, dtype=bool)


def strongest_text_tokens(model: Any, task: Any, batch: CTRBatch) -> list[tuple[str, float] | None]:
    """Per row of ``batch``, the text token its image attends to most (last cross-modal layer, heads and
    image tokens averaged) with that weight: the reason ``recommend --why`` shows. None for a row without
    an image, and for every row of a model without cross-modal layers."""
    import torch

    with torch.no_grad():
        attention = model.cross_attention(batch)
    if not attention:
        return [None] * len(batch.users)
    image_to_text = attention["image_to_text"].mean(dim=(1, 2)).cpu().numpy()  # (B, Lt)
    image_present = batch.content_masks[model.image_index].cpu().numpy()
    reasons: list[tuple[str, float] | None] = []
    for row, weights in enumerate(image_to_text):
        labels, real = text_token_labels(model, task, batch, row)
        kept = np.flatnonzero(real)
        if not image_present[row] or not len(kept):
            reasons.append(None)
            continue
        best = kept[np.argmax(weights[kept])]
        reasons.append((labels[best], float(weights[best])))
    return reasons


def image_token_labels(count: int, regions: bool) -> list[str]:
    side = int(round(math.sqrt(count)))
    if regions and side * side == count:
        return [f"region r{r // side}c{r % side}" for r in range(count)]
    return [f"image token {t}" for t in range(count)]


def explain_row(model: Any, task: Any, batch: CTRBatch, out_dir: Path | None) -> Explanation:
    """Weights: which image tokens the text side attends to, and which text tokens the image side attends
    to (the last cross-modal layer, heads averaged); the full text x image grid; PNG heat maps."""
    import torch

    dataset = task.dataset
    user, item = int(batch.users[0]), int(batch.items[0])
    subject = f"user {dataset.user_ids[user]}, item {dataset.item_ids[item]}"
    with torch.no_grad():
        score = float(torch.sigmoid(model.logits(batch))[0])
    attention = model.cross_attention(batch)
    if not attention:
        return Explanation(subject, score, details={"note": "this model has no cross-modal layers (ablation)"})
    text_to_image = attention["text_to_image"][0].mean(0).cpu().numpy()  # (Lt, Li)
    image_to_text = attention["image_to_text"][0].mean(0).cpu().numpy()  # (Li, Lt)
    text_labels, real = text_token_labels(model, task, batch)
    image_labels = image_token_labels(text_to_image.shape[1], model.regions)
    image_present = bool(batch.content_masks[model.image_index][0])
    kept = np.flatnonzero(real)
    grid = text_to_image[kept]  # (Lt', Li)
    text_rows = [text_labels[i] for i in kept]
    per_image = grid.mean(0) if len(kept) else np.zeros(len(image_labels))
    per_text = image_to_text[:, kept].mean(0) if image_present else np.zeros(len(kept))
    explanation = Explanation(
        subject,
        score,
        weights={
            "image tokens the text side attends to": dict(
                list(labelled(image_labels, per_image.tolist()).items())[:TOP]
            ),
            "text tokens the image side attends to": dict(list(labelled(text_rows, per_text.tolist()).items())[:TOP]),
        },
        grids={"text -> image attention": WeightGrid(text_rows, image_labels, grid.tolist())},
        details={"image_present": image_present, "layer": "last cross-modal layer, heads averaged"},
    )
    if out_dir is not None and image_present:
        stem = f"ctr_{dataset.user_ids[user]}_{dataset.item_ids[item]}"
        explanation.images.append(
            heatmap(
                grid,
                text_rows,
                Path(out_dir) / f"{stem}_text_to_image.png",
                f"CMBF text -> image attention, {subject}",
                columns=image_labels,
                row_axis="text token (query)",
                column_axis="image token (key)",
            )
        )
        if model.regions:
            overlay = region_overlay(dataset, item, per_image, Path(out_dir) / f"{stem}_regions.png")
            if overlay is not None:
                explanation.images.append(overlay)
    return explanation
