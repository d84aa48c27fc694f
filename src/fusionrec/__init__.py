"""fusionrec: multimodal recommendation with attention-based fusion."""

from fusionrec.threads import prefer_passive_waiting
from fusionrec.version import __version__

prefer_passive_waiting()  # before anything loads torch's OpenMP runtime (fusionrec.threads says why)

from fusionrec.data import load_dataset, prepare  # noqa: E402

__all__ = ["__version__", "load_dataset", "prepare"]
