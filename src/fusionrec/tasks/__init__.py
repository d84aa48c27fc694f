"""Tasks own the loaders and the evaluation protocol of one family of recommendation problems."""

from fusionrec.tasks.sequential import SequentialTask
from fusionrec.tasks.topk import TopKTask

__all__ = ["SequentialTask", "TopKTask"]
