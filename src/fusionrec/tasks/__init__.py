"""Task families, one per subpackage; importing this package registers every family in ``TASKS``.

A new family is a folder here (its task, ``task:`` config section, samplers, evaluator,
explanations) found by folder, with its models in ``models/<family>/``: see ``docs/extending.md``."""

from fusionrec.registry import import_subpackages
from fusionrec.tasks.base import DataNeeds, Explanation, Recommendation, Task, TaskConfig

FAMILIES = import_subpackages(__name__, __path__)

__all__ = ["DataNeeds", "Explanation", "FAMILIES", "Recommendation", "Task", "TaskConfig"]
