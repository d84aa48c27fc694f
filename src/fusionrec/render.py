"""Drawing attention: a labelled heat map of a square matrix, and region weights over an item image.

Pure rendering (matplotlib, Pillow); what the weights mean is the tasks' business."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.errors import FusionrecError


def heatmap(
    matrix: np.ndarray,
    rows: list[str],
    path: Path,
    title: str,
    columns: list[str] | None = None,
    row_axis: str = "position (query)",
    column_axis: str = "attended item (key)",
) -> str:
    """Write ``matrix`` (R, C) as a labelled heat map PNG; ``columns`` default to ``rows`` (a square
    attention map). Returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FusionrecError("drawing attention maps needs matplotlib: pip install 'fusionrec[bench]'") from None
    columns = rows if columns is None else columns
    height = max(3.0, 0.28 * len(rows) + 2.5)
    width = max(4.0, 0.28 * len(columns) + 2.5) if columns is rows else max(4.0, 0.9 * len(columns) + 3.5)
    fig, ax = plt.subplots(figsize=(width + 1.0, height))
    image = ax.imshow(matrix, cmap="viridis", aspect="equal" if columns is rows else "auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(column_axis)
    ax.set_ylabel(row_axis)
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
    image = image.resize((image.size[0] * scale, image.size[1] * scale), Image.Resampling.BICUBIC)
    grid = region_weights.reshape(side, side)
    grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-12)  # (side, side) in [0, 1]
    heat = (
        np.asarray(
            Image.fromarray((grid * 255).astype(np.uint8), mode="L").resize(image.size, Image.Resampling.BILINEAR),
            dtype=np.float32,
        )[..., None]
        / 255.0
    )  # (H, W, 1)
    colour = np.concatenate(
        [np.clip(2 * heat, 0, 1), np.clip(2 * heat - 1, 0, 1), np.zeros_like(heat)], -1
    )  # black-red-yellow
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
