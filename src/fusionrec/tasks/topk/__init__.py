"""The top-K family: full ranking from implicit feedback (models in ``fusionrec.models.topk``)."""

from fusionrec.tasks.topk.task import TopKTask, TopKTaskConfig

__all__ = ["TopKTask", "TopKTaskConfig"]
