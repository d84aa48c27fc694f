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
    names = list(getattr(run.model, "modality_names", []) or [])
    shown: dict[str, Any] = {}
    image_path = None
    for key, value in weights.items():
        vector = value.detach().float().reshape(value.shape[0], -1)[0].numpy()
        if key == "regions" and out_dir is not None:
            image_path = region_overlay(ds, i, vector, Path(out_dir) / f"explain-u{user}-i{item}.png")
        if names and len(vector) == len(names):
            shown[key] = {n: float(w) for n, w in zip(names, vector)}
        else:
            shown[key] = [round(float(w), 6) for w in vector]
    return {"user": user, "item": item, "score": score, "weights": shown, "image": image_path}


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
    grid = region_weights.reshape(side, side)
    grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-12)
    heat = Image.fromarray((grid * 255).astype(np.uint8), mode="L").resize(image.size, Image.BILINEAR)
    red = Image.merge("RGB", (heat, Image.new("L", image.size, 0), Image.new("L", image.size, 0)))
    blended = Image.blend(image, red, alpha=0.45)
    path.parent.mkdir(parents=True, exist_ok=True)
    blended.save(path)
    return str(path)


def _index(ids: np.ndarray, raw: str, what: str, data: str) -> int:
    matches = np.flatnonzero(ids.astype(str) == str(raw))
    if not len(matches):
        raise FusionrecError(f"unknown {what} {raw!r} in {data} (ids look like: {', '.join(map(str, ids[:5]))}, ...)")
    return int(matches[0])
