"""Attention fusion blocks, one family per file; importing this package fills ``FUSIONS``.

``docs/fusion.md`` lists every block with its equation and the seed models that use it. The
interchangeable *modality fusors* (one constructor and call signature, see ``base.py``) are built
by name with :func:`build_modality_fusion` (defined here, below the imports that fill the registry).
"""

import inspect
from typing import Any

from fusionrec.errors import ConfigError
from fusionrec.nn.fusion.attentional_gru import AttentionalGRU
from fusionrec.nn.fusion.base import FusionOutput, ModalityFusion, PairFusionOutput
from fusionrec.nn.fusion.co_attention import StackedCoAttention
from fusionrec.nn.fusion.cross_modal_transformer import CrossModalTransformer
from fusionrec.nn.fusion.gated_graph_attention import GatedGraphAttentionConv
from fusionrec.nn.fusion.modality_attention import ModalityAttention
from fusionrec.nn.fusion.modality_self_attention import ModalitySelfAttention
from fusionrec.nn.fusion.multi_level import CorrelationAwareFusion, PrefixGuidedAttention
from fusionrec.nn.fusion.multi_order_attention import MultiOrderAttention
from fusionrec.nn.fusion.non_invasive_attention import NonInvasiveSelfAttention
from fusionrec.nn.fusion.personalized_attention import PersonalizedAttention
from fusionrec.nn.fusion.simple import ConcatFusion, GatedFusion, MeanFusion, ProductFusion, SumFusion
from fusionrec.registry import FUSIONS

__all__ = [
    "AttentionalGRU",
    "ConcatFusion",
    "CorrelationAwareFusion",
    "CrossModalTransformer",
    "FusionOutput",
    "GatedFusion",
    "GatedGraphAttentionConv",
    "MeanFusion",
    "ModalityAttention",
    "ModalityFusion",
    "ModalitySelfAttention",
    "MultiOrderAttention",
    "NonInvasiveSelfAttention",
    "PairFusionOutput",
    "PersonalizedAttention",
    "PrefixGuidedAttention",
    "ProductFusion",
    "StackedCoAttention",
    "SumFusion",
    "build_modality_fusion",
    "modality_fusion_names",
]


def modality_fusion_names() -> list[str]:
    """Names of the registered fusions that follow the modality fusor contract."""
    return [entry.name for entry in FUSIONS if entry.meta.get("modality_fusor", False)]


def build_modality_fusion(name: str, dim: int, num_modalities: int, **opts: Any) -> ModalityFusion:
    """Build the modality fusor registered as ``name``.

    Args:
        name: a registry key among :func:`modality_fusion_names` (``concat``, ``gated``, ...).
        dim: D, the dim of every modality vector and of the output.
        num_modalities: M.
        **opts: the block's own keyword options (e.g. ``hidden_dim`` for ``modality_attention``).

    Raises:
        ConfigError: unknown name (lists the modality fusors) or unknown option (lists the valid ones).
    """
    choices = modality_fusion_names()
    if name not in choices:
        raise ConfigError(f"unknown modality fusion {name!r}; choose one of: {', '.join(choices)}")
    cls = FUSIONS.get(name)
    params = inspect.signature(cls).parameters
    valid = [p for p in params if p not in ("dim", "num_modalities")]
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise ConfigError(
            f"modality fusion {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    return cls(dim, num_modalities, **opts)
