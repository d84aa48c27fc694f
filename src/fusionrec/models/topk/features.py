"""Turning a data set's modalities into the dense item-feature tensors models take.

Content statistics (the means and standard deviations of :func:`standardize`) are fitted on the
items that occur in training (:func:`training_items`) and applied to every item, so that items held
out of training (all the test items of a cold-start split) do not shape them; see docs/models.md,
"What content statistics see".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fusionrec.data.content import training_item_mask
from fusionrec.errors import DataError


def modality_tensors(
    dataset, names: list[str], model: str, keep_regions: bool = False
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Per-modality float32 ``(I, D_m)`` features and bool ``(I,)`` masks.

    Region grids ``(I, R, D_m)`` are mean-pooled unless ``keep_regions``. ``names == ["all"]``
    selects every modality of the data set. Unknown names fail with the choices.
    """
    have = list(dataset.modalities)
    if names == ["all"]:
        names = have
    if not names:
        raise DataError(
            f"{model} needs at least one modality; data set {dataset.name!r} has: {', '.join(have) or 'none'}"
        )
    dataset.schema.require_modalities(model, names)
    features, masks = {}, {}
    for name in names:
        modality = dataset.modalities[name]
        values = np.array(modality.values, dtype=np.float32)  # a private copy: stored arrays are memory-mapped
        if values.ndim == 3 and not keep_regions:
            values = values.mean(axis=1)
        features[name] = torch.from_numpy(values)
        masks[name] = torch.from_numpy(np.asarray(modality.mask, dtype=bool).copy())
    return features, masks


def training_items(dataset) -> Tensor:
    """Bool ``(I,)``: the items with at least one training interaction, on which content statistics
    are fitted."""
    return torch.from_numpy(training_item_mask(dataset))


def standardize(features: Tensor, mask: Tensor, fit: Tensor | None = None) -> Tensor:
    """Zero-mean, unit-variance columns; missing items stay zero.

    The means and standard deviations are computed over the present items that are also in ``fit``
    (models pass :func:`training_items`; None: every present item) and applied to all items, so
    the features of an item outside ``fit`` do not change anyone's standardised features but its
    own. With fewer than two such items the features are returned unscaled (missing rows zeroed).

    Shapes: features (I, D) or (I, R, D) (statistics pooled over regions), mask (I,), fit (I,) bool.
    """
    if features.dim() == 3:
        repeat = features.shape[1]
        flat = standardize(
            features.reshape(-1, features.shape[-1]),
            mask.repeat_interleave(repeat),
            None if fit is None else fit.repeat_interleave(repeat),
        )
        return flat.reshape(features.shape)
    present = features[mask if fit is None else mask & fit]
    if len(present) < 2:
        return features * mask.unsqueeze(-1)
    mean = present.mean(0)
    std = present.std(0).clamp_min(1e-6)
    return ((features - mean) / std) * mask.unsqueeze(-1)
