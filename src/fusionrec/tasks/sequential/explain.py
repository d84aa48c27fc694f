"""Sequential explanations: the self-attention over a user's sequence behind its next recommendation."""

from __future__ import annotations

from collections.abc import Sequence
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
    maps: dict[str, Tensor],
    dataset: Any,
    user: int,
    model_name: str,
    out_dir: Path | None,
    layer: int = -1,
    names: Sequence[str] = (),
) -> Explanation:
    """What a sequential model's maps say about ``user``'s next item.

    Self-attention (``attention``: layers x B x H x L x L) gives the predicting slot's attention over
    the sequence as a table, the whole map in ``details`` (``attention`` (L', L'), ``items`` raw ids,
    ``titles``) and a heat map PNG in ``out_dir``. Any other map is shown by its shape: one weight per
    slot (e.g. MARank's ``individual`` weights) as a table over the sequence's items; one weight per
    entry of ``names`` (e.g. MML's learners) as a labelled table; anything else as a vector."""
    tokens = maps["items"][0]  # (L,)
    keep = (tokens >= 0).nonzero().flatten()
    raw, shown = _labels(tokens[keep].tolist(), dataset)
    result = Explanation(f"user {dataset.user_ids[user]}: the sequence behind its next item")
    result.details = {"items": raw, "titles": shown}
    if "attention" in maps:
        attention, _ = _attention(maps, model_name, layer)
        result.weights["attention of the predicting slot (last layer, mean over heads)"] = labelled(
            _unique(shown), attention[-1].tolist()
        )
        result.details["attention"] = attention.tolist()
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
    for key, value in maps.items():
        if key in ("items", "attention"):
            continue
        row = value.detach().float()[0]
        if row.dim() == 1 and len(row) == len(tokens):  # one weight per slot of the sequence
            result.weights[f"{key} (per item of the sequence)"] = labelled(_unique(shown), row[keep].tolist())
        elif row.dim() == 1 and names and len(row) == len(names):
            result.weights[key] = labelled(list(names), row.tolist())
        else:
            result.vectors[key] = [round(float(w), 6) for w in row.reshape(-1)]
    if not result.weights and not result.vectors:
        raise FusionrecError(f"{model_name} returns no attention over the sequence to explain")
    return result


def attention_reasons(maps: dict[str, Tensor], dataset: Any) -> tuple[str, float] | None:
    """The item of the sequence the model weighs most for its next item (the predicting slot's
    self-attention, else the first one-weight-per-slot map), and its weight; None without such a map."""
    tokens = maps["items"][0]
    if "attention" in maps:
        attention, kept = _attention(maps, "model")
        _, shown = _labels(kept, dataset)
        row = attention[-1].copy()
    else:
        per_slot = next(
            (v for k, v in maps.items() if k != "items" and v[0].dim() == 1 and len(v[0]) == len(tokens)), None
        )
        if per_slot is None:
            return None
        keep = (tokens >= 0).nonzero().flatten()
        _, shown = _labels(tokens[keep].tolist(), dataset)
        row = per_slot.detach().float()[0][keep].numpy().copy()
    weights = row.copy()
    if shown and shown[-1] == NEXT and len(row) > 1:
        row[-1] = -1.0  # the slot itself is not a reason
    best = int(row.argmax())
    return shown[best], float(weights[best])
