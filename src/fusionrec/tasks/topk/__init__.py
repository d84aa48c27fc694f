"""The top-K family: full ranking from implicit feedback (models in ``fusionrec.models.topk``)."""

from fusionrec.tasks.topk.task import TopKTaskConfig, TopKTask

__all__ = ["TopKTask", "TopKTaskConfig"]
