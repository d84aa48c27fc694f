"""Every config shipped with fusionrec validates against the current config classes."""

import pytest

from fusionrec.api import resolve_config
from fusionrec.config import shipped_configs


@pytest.mark.parametrize("name", shipped_configs())
def test_shipped_config_validates(name):
    run_config, model_config = resolve_config(config=name)
    assert name.split("/")[-1].split("-")[0] == model_config.name  # named after its model; a variant adds -suffix


def test_demo_configs_are_shipped_and_resolve_with_the_demo_overrides():
    from fusionrec.demo import COLD_BUDGET, COLD_ITEMS, COLD_RUNS, PINNED_FEATURES, WARM_RUNS

    assert set(WARM_RUNS) | set(COLD_RUNS) <= set(shipped_configs())
    for config in COLD_RUNS:
        extra = PINNED_FEATURES if "mario" in config else []
        run_config, _ = resolve_config(config=config, overrides=[*COLD_ITEMS, *COLD_BUDGET, *extra])
        assert run_config.task["candidates"] == "unseen" and run_config.train.epochs == 20
