"""The sequential family: next-item ranking from time-ordered sequences (models in ``fusionrec.models.sequential``)."""

from fusionrec.tasks.sequential.task import SequentialTask, SequentialTaskConfig

__all__ = ["SequentialTask", "SequentialTaskConfig"]
