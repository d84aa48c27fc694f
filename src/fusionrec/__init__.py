"""fusionrec: multimodal recommendation with attention-based fusion."""

__version__ = "0.1.0"

from fusionrec.threads import prefer_passive_waiting  # noqa: E402

prefer_passive_waiting()  # before anything loads torch's OpenMP runtime (fusionrec.threads says why)

from fusionrec.data import load_dataset, prepare  # noqa: E402

__all__ = ["__version__", "load_dataset", "prepare"]
