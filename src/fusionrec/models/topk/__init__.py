"""Top-K recommenders from implicit feedback (task ``topk``): one import line per model file."""

from fusionrec.models.topk import bpr, lightgcn, vbpr  # noqa: F401
from fusionrec.models.topk import hcgcn, mario, mgat  # noqa: F401
from fusionrec.models.topk import mcptr  # noqa: F401
from fusionrec.models.topk import uvcan  # noqa: F401
from fusionrec.models.topk import ease  # noqa: F401
from fusionrec.models.topk import mostpop  # noqa: F401
from fusionrec.models.topk import random_scores  # noqa: F401
