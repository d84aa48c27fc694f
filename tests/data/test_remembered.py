"""A file or folder keeps the settings of its last ``fusionrec data prepare`` for every later command
(``data info``, ``data validate``, ``train -d``, ``load_dataset``) unless told otherwise; and
``data prepare`` takes trailing ``data.KEY=VALUE`` settings."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app
from fusionrec.data import DataConfig, load_dataset
from fusionrec.data.prepare import RememberedSettings, prepare, resolve_data_config

ENV = {"COLUMNS": "200"}


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(app, list(args), env=ENV)
    if ok:
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def info(source: str, *overrides: str) -> dict:
    return json.loads(run("data", "info", source, *overrides, "--json").output)


def cached(home: Path, name: str) -> list[str]:
    root = home / "datasets" / name
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture
def folder(mmrec_folder, toy_rows):
    # x_label: 2 train, 2 valid, 2 test per user; the default random split gives 4 / 1 / 1.
    return mmrec_folder(toy_rows(num_valid=2, num_test=2), num_items=40)


COLUMN = {"train": 40, "valid": 40, "test": 40}


def test_info_and_validate_see_the_prepared_split(folder, home):
    run("data", "prepare", str(folder), "--split", "column")
    assert len(cached(home, folder.name)) == 1
    summary = info(str(folder))
    assert summary["split"] == COLUMN and summary["split_settings"]["method"] == "column"
    assert "split.method=column" in summary["remembered"]
    validated = run("data", "validate", str(folder)).output
    assert "split.method=column: train 40 / valid 40 / test 40" in validated
    assert len(cached(home, folder.name)) == 1, "info/validate must not prepare a second copy"


def test_the_same_folder_spelt_another_way_is_the_same_source(folder, home, monkeypatch):
    run("data", "prepare", str(folder), "--split", "column")
    monkeypatch.chdir(folder.parent)
    assert info(f"./{folder.name}")["split"] == COLUMN
    assert len(cached(home, folder.name)) == 1


def test_explicit_settings_still_win(folder, home):
    run("data", "prepare", str(folder), "--split", "column")
    summary = info(str(folder), "split.method=random")
    assert summary["split_settings"]["method"] == "random" and summary["split"] != COLUMN
    assert info(str(folder))["split"] == COLUMN  # the memory is unchanged by info
    run("data", "prepare", str(folder), "--split", "random")  # a new `data prepare` replaces it
    assert info(str(folder))["split_settings"]["method"] == "random"


def test_python_and_train_use_the_prepared_split_and_say_so(folder):
    run("data", "prepare", str(folder), "--split", "column")
    with pytest.warns(RememberedSettings, match=r"split.method=column"):
        ds = load_dataset(str(folder))
    assert ds.split_sizes() == COLUMN
    # `fusionrec train -d FOLDER` prepares run_config.data, whose only explicit setting is the name.
    try:
        from fusionrec.api import resolve_config
    except ImportError as exc:  # pragma: no cover - another layer mid-edit
        pytest.skip(f"fusionrec.api does not import: {exc}")

    run_config, _ = resolve_config("bpr", str(folder))
    with pytest.warns(RememberedSettings):
        used = prepare(run_config.data)
    assert json.loads((used / "manifest.json").read_text())["split"] == COLUMN


def test_without_a_prepare_the_defaults_apply_silently(folder):
    config = DataConfig(name=str(folder), split={"method": "column"})
    assert resolve_data_config(config) is config
    with warnings.catch_warnings():
        warnings.simplefilter("error", RememberedSettings)
        assert load_dataset(config).split_sizes() == COLUMN  # a plain prepare() remembers nothing
        assert load_dataset(str(folder)).meta["split"]["method"] == "random"


def test_builtins_keep_their_documented_defaults():
    run(
        "data",
        "prepare",
        "synthetic",
        "--split",
        "loo",
        "-o",
        "num_users=40",
        "-o",
        "num_items=30",
        "-o",
        "num_interactions=600",
    )
    config = DataConfig(name="synthetic")
    assert resolve_data_config(config) is config


# -- trailing data.* settings (fix: "unexpected extra argument") -------------------------------


def test_prepare_takes_trailing_data_settings(tmp_path):
    path = tmp_path / "ratings.csv"
    rows = [f"{u},{i},{u * 10 + i}" for u in range(1, 6) for i in range(1, 11)]
    path.write_text("customer,sku,when\n" + "\n".join(rows) + "\n")
    result = run(
        "data",
        "prepare",
        str(path),
        "--split",
        "temporal",
        "data.columns.user=customer",
        "columns.item=sku",
        "data.columns.timestamp=when",
        "--set",
        "split.ratios=[0.6,0.2,0.2]",
    )
    assert "temporal: train 30 / valid 10 / test 10" in result.output
    summary = info(str(path))  # remembered, mapping included
    assert summary["users"] == 5 and summary["split"] == {"train": 30, "valid": 10, "test": 10}


def test_trailing_settings_override_options_and_bad_ones_fail_in_one_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item\n" + "\n".join(f"{u},{i}" for u in range(4) for i in range(10)) + "\n")
    assert "loo" in info_after_prepare(path, "--split", "random", "split.method=loo")
    bad = run("data", "prepare", str(path), "data.split.methd=loo", ok=False)
    assert bad.exit_code != 0 and "unknown key 'split.methd'" in str(bad.exception)


def info_after_prepare(path: Path, *args: str) -> str:
    from fusionrec.errors import DataError

    result = run("data", "prepare", str(path), *args, ok=False)
    if isinstance(result.exception, DataError):  # loo without timestamps: the message names the split
        return str(result.exception)
    return result.output
