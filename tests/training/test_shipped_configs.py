"""Every config shipped with fusionrec validates against the current config classes."""

import pytest

from fusionrec.api import resolve_config
from fusionrec.config import shipped_configs


@pytest.mark.parametrize("name", shipped_configs())
def test_shipped_config_validates(name):
    run_config, model_config = resolve_config(config=name)
    assert name.split("/")[-1].split("-")[0] == model_config.name  # named after its model; a variant adds -suffix


def test_demo_configs_are_shipped():
    from fusionrec.demo import DEMO_RUNS

    assert set(DEMO_RUNS) <= set(shipped_configs())
