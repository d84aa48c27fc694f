"""DeepFM with the item's image/text embeddings as dense fields: the usual industry way to feed
pre-learned content vectors to a CTR model, next to which CMBF shows what cross-modal attention adds.

The model is :class:`~fusionrec.models.ctr.deepfm.DeepFM` with ``use_content=True`` (a preset, not a
second implementation): each content field is projected to D and joins the FM and the DNN.
"""

from __future__ import annotations

from pydantic import Field

from fusionrec.models.ctr.deepfm import DeepFM, DeepFMConfig
from fusionrec.registry import MODELS


class DeepFMContentConfig(DeepFMConfig):
    name: str = "deepfm_content"
    use_content: bool = Field(True, description="item content vectors (image/text) as dense fields")


MODELS.register(
    "deepfm_content",
    config=DeepFMContentConfig,
    task="ctr",
    paper="Guo et al., IJCAI 2017 + content",
    modalities="image, text",
)(DeepFM)
