"""fusionrec: multimodal recommendation with attention-based fusion."""

__version__ = "0.1.0"

from fusionrec.data import load_dataset, prepare  # noqa: E402

__all__ = ["__version__", "load_dataset", "prepare"]
