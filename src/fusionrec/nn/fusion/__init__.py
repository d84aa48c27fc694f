"""Attention fusion blocks, one family per file; importing this package fills ``FUSIONS``.

``docs/fusion.md`` lists every block with its equation and the seed models that use it. The
interchangeable *modality fusors* (one constructor and call signature, see ``base.py``) are built
by name with :func:`build_modality_fusion`.
"""

from fusionrec.nn.fusion.base import (
    FusionOutput,
    ModalityFusion,
    PairFusionOutput,
    build_modality_fusion,
    modality_fusion_names,
)
from fusionrec.nn.fusion.simple import ConcatFusion, GatedFusion, MeanFusion, ProductFusion, SumFusion
from fusionrec.nn.fusion.modality_attention import ModalityAttention
from fusionrec.nn.fusion.modality_self_attention import ModalitySelfAttention
from fusionrec.nn.fusion.co_attention import StackedCoAttention
from fusionrec.nn.fusion.cross_modal_transformer import CrossModalTransformer
from fusionrec.nn.fusion.personalized_attention import PersonalizedAttention
from fusionrec.nn.fusion.non_invasive_attention import NonInvasiveSelfAttention
from fusionrec.nn.fusion.gated_graph_attention import GatedGraphAttentionConv
from fusionrec.nn.fusion.multi_level import CorrelationAwareFusion, PrefixGuidedAttention
from fusionrec.nn.fusion.multi_order_attention import MultiOrderAttention
from fusionrec.nn.fusion.attentional_gru import AttentionalGRU

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
