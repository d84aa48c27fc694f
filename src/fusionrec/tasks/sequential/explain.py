"""Sequential explanations: the self-attention over a user's sequence behind its next recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from fusionrec.errors import FusionrecError
from fusionrec.render import heatmap
from fusionrec.tasks.base import Explanation, labelled

NEXT = "[next]"  # the slot being predicted (BERT4Rec-style models end their input with it)


def _attention(maps: dict[str, Tensor], model_name: str, layer: int = -1) -> tuple[np.ndarray, list[int]]:
    """The (L', L') map of ``layer`` averaged over heads, padding dropped, and the tokens kept."""
    if "attention" not in maps:
        raise FusionrecError(f"{model_name} returns no attention map over the sequence to explain")
    tokens = maps["items"][0]  # (L,)
    keep = (tokens >= 0).nonzero().flatten()
    attention = maps["attention"][layer, 0].float().mean(0)[keep][:, keep].numpy()  # (L', L')
    return attention, tokens[keep].tolist()


def _labels(tokens: list[int], dataset: Any) -> tuple[list[str], list[str]]:
    titles = dataset.item_titles()
    raw = [NEXT if t >= dataset.num_items else str(dataset.item_ids[t]) for t in tokens]
    shown = [NEXT if t >= dataset.num_items else (titles[t] if titles else raw[j])[:28] for j, t in enumerate(tokens)]
    return raw, shown


def _unique(labels: list[str]) -> list[str]:
    """Labels made unique (a repeated item gets its position appended) so they can key a table."""
    seen: dict[str, int] = {}
    out = []
    for j, label in enumerate(labels):
        out.append(label if label not in seen else f"{label} (slot {j})")
        seen[label] = j
    return out


def sequence_explanation(
    maps: dict[str, Tensor], dataset: Any, user: int, model_name: str, out_dir: Path | None, layer: int = -1
) -> Explanation:
    """The attention of the predicting (last) slot over the sequence, the whole map in ``details``
    (``attention`` (L', L'), ``items`` raw ids, ``titles``), and a heat map PNG in ``out_dir``."""
    attention, tokens = _attention(maps, model_name, layer)
    raw, shown = _labels(tokens, dataset)
    result = Explanation(f"user {dataset.user_ids[user]}: the sequence behind its next item")
    result.weights["attention of the predicting slot (last layer, mean over heads)"] = labelled(
        _unique(shown), attention[-1].tolist()
    )
    result.details = {"items": raw, "titles": shown, "attention": attention.tolist()}
    if out_dir is not None:
        num_layers = len(maps["attention"])
        result.images.append(
            heatmap(
                attention,
                shown,
                Path(out_dir) / f"attention-u{dataset.user_ids[user]}.png",
                f"{model_name}: user {dataset.user_ids[user]}, layer {layer % num_layers}, mean over heads",
            )
        )
    return result


def attention_reasons(maps: dict[str, Tensor], dataset: Any) -> tuple[str, float] | None:
    """The item of the sequence the predicting slot attends to most, and its weight; None without maps."""
    if "attention" not in maps:
        return None
    attention, tokens = _attention(maps, "model")
    _, shown = _labels(tokens, dataset)
    row = attention[-1].copy()
    if shown and shown[-1] == NEXT and len(row) > 1:
        row[-1] = -1.0  # the slot itself is not a reason
    best = int(row.argmax())
    return shown[best], float(attention[-1][best])
