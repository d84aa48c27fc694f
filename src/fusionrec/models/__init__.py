"""Model registry: one explicit import line per model file fills ``MODELS``."""

from fusionrec.models.topk import bpr, lightgcn, vbpr  # noqa: F401
from fusionrec.models.topk import hcgcn, mario, mgat  # noqa: F401
from fusionrec.models.topk import mcptr  # noqa: F401
from fusionrec.models.topk import uvcan  # noqa: F401
from fusionrec.models.sequential import bert4rec, marank, mml, nova_bert, sasrec  # noqa: F401
