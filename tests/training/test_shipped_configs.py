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


def test_the_demo_refuses_a_modality_someone_replaced_with_extracted_features(tmp_path):

    from fusionrec.data import load_dataset
    from fusionrec.demo import require_builtin_modalities
    from fusionrec.errors import FusionrecError
    from fusionrec.features import extract_features

    options = {"num_users": 30, "num_items": 20, "num_interactions": 300, "text_dim": 4}
    data = load_dataset("synthetic", options=options)
    require_builtin_modalities(data, ("text",))  # as prepared: built in
    texts = [f"item {i} about {'cats' if i % 2 else 'dogs'}" for i in range(data.num_items)]
    data.items = (data.items if data.items is not None else __import__("pandas").DataFrame(index=range(20))).assign(
        text=texts
    )
    extract_features(data, modality="text", encoder="tfidf-lsa-4")  # replaces the text modality in place
    with pytest.raises(FusionrecError, match="pins ml-100k's built-in 'text' modality, but .* extracted"):
        require_builtin_modalities(data, ("text",))
