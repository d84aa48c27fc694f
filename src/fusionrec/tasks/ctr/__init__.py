"""The ``ctr`` task family: click-through-rate prediction on labelled rows (docs/ctr.md)."""

from fusionrec.tasks.ctr.task import CTRTask, CTRTaskConfig

__all__ = ["CTRTask", "CTRTaskConfig"]
