"""Every registered task family has its tests, its config section, and a one-line protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrec import tasks
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Task, TaskConfig

HERE = Path(__file__).parent


@pytest.mark.parametrize("family", tasks.FAMILIES)
def test_every_library_family_is_registered_with_a_config_section_and_has_a_test_file(family):
    entry = TASKS.entry(family)
    assert issubclass(entry.obj, Task) and issubclass(entry.config, TaskConfig)
    assert entry.obj.name == family
    own_folder = HERE.parent / family  # a large family keeps its tests in tests/<family>/
    assert (HERE / f"test_{family}.py").exists() or any(own_folder.glob("test_*.py")), (
        f"family {family!r} has no tests: tests/tasks/test_{family}.py or tests/{family}/test_*.py"
    )


def test_families_are_exactly_the_task_subpackages():
    folders = sorted(p.name for p in (Path(tasks.__file__).parent).iterdir() if (p / "__init__.py").exists())
    assert tasks.FAMILIES == folders and set(folders) <= set(TASKS.names())
