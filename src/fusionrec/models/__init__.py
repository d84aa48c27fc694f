"""Model registry: one explicit import line per model file fills ``MODELS``."""

from fusionrec.models.topk import bpr, lightgcn, vbpr  # noqa: F401
