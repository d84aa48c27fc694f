"""Top-K recommenders from implicit feedback (task ``topk``): one import line per model file."""

from fusionrec.models.topk import (  # noqa: F401  # noqa: F401
    bpr,
    ease,  # noqa: F401
    hcgcn,
    lightgcn,
    mario,
    mcptr,  # noqa: F401
    mgat,
    mostpop,  # noqa: F401
    random_scores,  # noqa: F401
    uvcan,  # noqa: F401
    vbpr,
)
