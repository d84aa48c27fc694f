"""Turning a data set's modalities into the dense item-feature tensors models take."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fusionrec.errors import DataError


def modality_tensors(dataset, names: list[str], model: str,
                     keep_regions: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Per-modality float32 ``(I, D_m)`` features and bool ``(I,)`` masks.

    Region grids ``(I, R, D_m)`` are mean-pooled unless ``keep_regions``. ``names == ["all"]``
    selects every modality of the data set. Unknown names fail with the choices.
    """
    have = list(dataset.modalities)
    if names == ["all"]:
        names = have
    if not names:
        raise DataError(f"{model} needs at least one modality; data set {dataset.name!r} has: {', '.join(have) or 'none'}")
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


def standardize(features: Tensor, mask: Tensor) -> Tensor:
    """Zero-mean, unit-variance columns computed over present items; missing items stay zero.

    Shapes: features (I, D) or (I, R, D) (statistics pooled over regions), mask (I,).
    """
    if features.dim() == 3:
        flat = standardize(features.reshape(-1, features.shape[-1]), mask.repeat_interleave(features.shape[1]))
        return flat.reshape(features.shape)
    present = features[mask]
    if len(present) < 2:
        return features * mask.unsqueeze(-1)
    mean = present.mean(0)
    std = present.std(0).clamp_min(1e-6)
    return ((features - mean) / std) * mask.unsqueeze(-1)
