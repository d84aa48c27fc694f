"""``fusionrec benchmark``: spec errors, Holm, per-user pairing, resume, validation-only search (trials
never evaluate test), ``--check`` (means against expected means within z standard errors, claimed
orderings) and the report files, on the tiny shipped smoke spec (2 epochs per run)."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy.stats import wilcoxon

from fusionrec.benchmark import holm, load_spec, paired_wilcoxon, run_benchmark
from fusionrec.benchmark import run as run_mod
from fusionrec.benchmark.report import align_users
from fusionrec.errors import ConfigError, FusionrecError

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "benchmarks" / "specs"
SMOKE = yaml.safe_load((SPECS / "smoke.yaml").read_text())


def quiet(_: str) -> None:
    pass


def smoke(**changes) -> dict:
    spec = copy.deepcopy(SMOKE)
    spec.update(changes)
    return spec


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """The smoke spec run once (3 search trials, 3 models x 2 seeds); tests read or reuse it."""
    home = tmp_path_factory.getbasetemp() / "fusionrec-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSIONREC_HOME", str(home))
        out = tmp_path_factory.mktemp("bench")
        result = run_benchmark(smoke(), out, log=quiet)
    return result


class Counter:
    """Stands in for fusionrec.api.train and counts the calls (none expected when resuming)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise AssertionError("a finished run was trained again")


# ----------------------------------------------------------------------------------------- spec
def test_shipped_specs_validate():
    for path in sorted(SPECS.glob("*.yaml")):
        spec, _ = load_spec(path)
        assert spec.models and spec.datasets and spec.seeds
        assert spec.reference in spec.models


@pytest.mark.parametrize(
    "change, needles",
    [
        (lambda s: s.update(sedds=[1]), ["unknown key 'sedds'", "valid keys:", "seeds"]),
        (
            lambda s: s["models"]["bpr"].update(overide=["x=1"]),
            ["unknown key 'models.bpr.overide'", "overrides, search"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"].update(trails=3),
            ["unknown key 'models.lightgcn.search.trails'", "trials"],
        ),
        (
            lambda s: s["models"]["bpr"].update(model="nope"),
            ["models.bpr", "unknown model 'nope'; choose one of:", "lightgcn"],
        ),
        (lambda s: s["models"]["bpr"].update(overrides=["train.lrr=1"]), ["models.bpr", "unknown key 'train.lrr'"]),
        (lambda s: s.update(reference="mf"), ["reference 'mf' is not a model", "bpr, lightgcn, vbpr"]),
        (lambda s: s.update(metric="ndcg20"), ["metric", "ndcg@20"]),
        (lambda s: s.update(metric="ndcg@7"), ["ndcg@7 are not computed", "ndcg@20"]),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"train.lr": {"type": "float", "low": 1, "high": 0.1}}
            ),
            ["models.lightgcn.search.space.train.lr: low must be below high"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}
            ),
            ["log: true needs low > 0"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"train.lr": {"type": "gauss", "low": 0, "high": 1}}
            ),
            ["space.train.lr", "type must be one of: float, int, categorical", "gauss"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"train.lr": {"type": "int", "low": 1, "hihg": 2}}
            ),
            [
                "unknown key 'models.lightgcn.search.space.train.lr.hihg'",
                "valid keys: type, low, high, log, step",
                "missing key 'models.lightgcn.search.space.train.lr.high'",
            ],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"model.num_layerz": {"type": "int", "low": 1, "high": 2}}
            ),
            ["models.lightgcn.search.space.model.num_layerz", "unknown key 'model.num_layerz'", "num_layers"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"lr": {"type": "float", "low": 0.1, "high": 1}}
            ),
            ["space key 'lr' must be a dotted config key"],
        ),
        (
            lambda s: s["models"]["lightgcn"]["search"]["space"].update(
                {"model.num_layers": {"type": "categorical", "choices": [1, "two"]}}
            ),
            ["search.space.model.num_layers (value 'two')", "num_layers"],
        ),
        (
            lambda s: s["expected"]["results"]["synthetic"].update(mf={"ndcg@20": {"mean": 0.1, "std": 0.1}}),
            ["expected.results.synthetic.mf: unknown model"],
        ),
        (
            lambda s: s["expected"]["results"]["synthetic"]["bpr"].update(
                {"ndcg@20": {"value": 0.1, "tolerance": 0.1}}
            ),
            ["old per-seed format", "{mean: M, std: S}", "docs/benchmark.md"],
        ),
        (lambda s: s["expected"].update(per="seed"), ["old per-seed format"]),
        (
            lambda s: s["expected"]["results"]["synthetic"]["bpr"].update(
                {"ndcg@20": {"mean": 0.1, "std": 0.1, "se": 0.05}}
            ),
            ["exactly one of std", "se"],
        ),
        (
            lambda s: s["expected"]["results"]["synthetic"]["bpr"].update({"ndcg@20": {"mean": 0.1}}),
            ["exactly one of std"],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@20": [["bpr", ">", "mf"]]}}),
            ["expected.orderings.synthetic.ndcg@20", "unknown model 'mf'", "bpr, lightgcn, vbpr"],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@20": [["bpr", ">=", "vbpr"]]}}),
            ["operator must be one of: >, <"],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@20": [["bpr", ">", "vbpr", "twice"]]}}),
            ["fourth element can only be every_seed"],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@20": [["bpr", ">"]]}}),
            ['an ordering is [model, ">", model]'],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@20": [["bpr", ">", "bpr"]]}}),
            ["compares a model with itself"],
        ),
        (
            lambda s: s["expected"].update(orderings={"mnist": {"ndcg@20": [["bpr", ">", "vbpr"]]}}),
            ["expected.orderings.mnist: unknown data set"],
        ),
        (
            lambda s: s["expected"].update(orderings={"synthetic": {"ndcg@7": [["bpr", ">", "vbpr"]]}}),
            ["ndcg@7 are not computed"],
        ),
    ],
)
def test_spec_errors_are_one_line_naming_the_key(change, needles):
    spec = smoke()
    change(spec)
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_spec_file_errors_name_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(smoke(sedds=[1])))
    with pytest.raises(ConfigError, match=r"s\.yaml: unknown key 'sedds'"):
        load_spec(path)
    with pytest.raises(ConfigError, match="benchmark spec not found"):
        load_spec(tmp_path / "missing.yaml")


# ----------------------------------------------------------------------------------------- statistics
def test_holm_matches_hand_computed_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone: 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # capped at 1; NaN is neither counted (m = 2) nor changed
    out = holm([0.5, float("nan"), 0.6])
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == 1.0
    np.testing.assert_allclose(holm([0.02]), [0.02])
    assert len(holm([])) == 0


def test_wilcoxon_pairs_users_by_id_not_by_position():
    rng = np.random.default_rng(0)
    users_a = np.arange(40)
    values_a = rng.random(40)
    shift = rng.normal(0.05, 0.05, 40)
    # run b: another order and a subset (users 0-4 missing), each user's own value plus its shift
    keep = rng.permutation(np.arange(5, 40))
    users_b = keep
    values_b = values_a[keep] + shift[keep]
    users, a, b = align_users(users_a, values_a, users_b, values_b)
    np.testing.assert_array_equal(users, np.arange(5, 40))
    np.testing.assert_allclose(b - a, shift[5:])
    result = paired_wilcoxon(users_a, values_a, users_b, values_b)
    expected = wilcoxon(values_a[5:], values_a[5:] + shift[5:])
    assert result["users"] == 35 and result["dropped"] == 5
    assert result["p"] == pytest.approx(expected.pvalue) and result["statistic"] == pytest.approx(expected.statistic)
    assert result["mean_diff"] == pytest.approx(-shift[5:].mean())
    # same per-user values in another order: nothing differs, p = 1 (positional pairing would not give that)
    same = paired_wilcoxon(users_a, values_a, users_a[::-1], values_a[::-1])
    assert same["p"] == 1.0 and same["mean_diff"] == 0.0
    with pytest.raises(FusionrecError, match="twice"):
        align_users(np.array([1, 1]), np.zeros(2), np.array([1]), np.zeros(1))


def test_trial_score_reads_validation_only():
    class NoTest(dict):
        def __getitem__(self, key):
            if key == "test":
                raise AssertionError("test metrics were read")
            return super().__getitem__(key)

        def get(self, key, default=None):
            if key == "test":
                raise AssertionError("test metrics were read")
            return super().get(key, default)

    record = {"metrics": NoTest(valid={"ndcg@20": 0.3}, test={"ndcg@20": 0.9})}
    assert run_mod.valid_value(record, "ndcg@20") == 0.3
    assert run_mod.valid_value({"metrics": {"valid": {"ndcg@20": float("nan")}}}, "ndcg@20") is None
    trials = [
        {"number": 0, "value": 0.2},
        {"number": 1, "value": 0.3},
        {"number": 2, "value": 0.3},
        {"number": 3, "value": None},
    ]
    assert run_mod.choose(trials)["number"] == 1  # the best value; the earliest trial on a tie


def test_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(FusionrecError, match=r"pip install 'fusionrec\[bench\]'"):
        run_mod.require("optuna", "a benchmark with a search")
    with pytest.raises(FusionrecError, match=r"fusionrec\[bench\]"):
        run_benchmark(smoke(), "/nonexistent/never/written", log=quiet)


# ----------------------------------------------------------------------------------------- a real run
def test_report_writes_csv_json_markdown_and_plots(done):
    out = done.out
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 and rows[0].startswith("data,model,seed,status")
    results = json.loads((out / "results.json").read_text())
    assert {(c["model"], c["seed"]) for c in results["cells"]} == {
        (m, s) for m in ("bpr", "lightgcn", "vbpr") for s in (1, 2)
    }
    assert len(results["significance"]) == 4  # (lightgcn, vbpr) x 2 seeds against bpr
    for row in results["significance"]:
        assert 0 <= row["p"] <= row["p_holm"] <= 1 and row["users"] > 0
    text = (out / "results.md").read_text()
    assert "| model | Recall@20 | NDCG@20 | best epochs | s/epoch | p vs bpr (ndcg@20, per seed) | Holm p |" in text
    assert "| bpr (reference) |" in text and " ± " in text
    for name in ("metrics_synthetic.png", "valid_curves_synthetic.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in done.report.plots] == ["metrics_synthetic.png", "valid_curves_synthetic.png"]
    # the final runs use the chosen trial's parameters, with the normal (not the short trial) epochs
    best = json.loads((out / "search" / "synthetic" / "lightgcn" / "best.json").read_text())
    record = json.loads((out / "runs" / "synthetic" / "lightgcn" / "seed1" / "record.json").read_text())
    assert record["config"]["train"]["lr"] == best["params"]["train.lr"]
    assert record["config"]["model"]["num_layers"] == best["params"]["model.num_layers"]
    assert record["config"]["train"]["epochs"] == 2 and record["config"]["train"]["seed"] == 1


def test_resume_reuses_finished_cells_and_trials(done, monkeypatch):
    from fusionrec import api

    records = sorted(done.out.glob("**/record.json"))
    assert len(records) == 3 + 6
    before = {p: p.stat().st_mtime_ns for p in records}
    counter = Counter()
    monkeypatch.setattr(api, "train", counter)
    again = run_benchmark(smoke(), done.out, log=quiet)
    assert counter.calls == 0
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert [c.record["metrics"]["test"] for c in again.cells] == [c.record["metrics"]["test"] for c in done.cells]


def test_search_never_reads_test_metrics_and_resumes_the_same_trials(done, monkeypatch, tmp_path):
    from fusionrec import api

    out = tmp_path / "copy"
    import shutil

    shutil.copytree(done.out, out)
    folder = out / "search" / "synthetic" / "lightgcn"
    stored = json.loads((folder / "trials.json").read_text())["trials"]
    chosen = json.loads((folder / "best.json").read_text())["number"]
    # Trials hold no test metrics; plant some (as an older fusionrec wrote them) so that reading them
    # would pick another trial, and forget the search's progress so every trial is asked and scored
    # again from its record.
    for trial in stored:
        path = Path(trial["run_dir"].replace(str(done.out), str(out))) / "record.json"
        record = json.loads(path.read_text())
        assert record["metrics"]["test"] is None
        record["metrics"]["test"] = {
            k: (100.0 if trial["number"] != chosen else -100.0) for k in record["metrics"]["valid"]
        }
        path.write_text(json.dumps(record))
    (folder / "trials.json").unlink()
    (folder / "best.json").unlink()
    counter = Counter()
    monkeypatch.setattr(api, "train", counter)
    again = run_benchmark(smoke(), out, log=quiet)
    assert counter.calls == 0  # the re-asked trials found their finished run folders
    search = again.searches[0]
    assert [t["params"] for t in search.trials] == [t["params"] for t in stored]  # same sampler draws
    assert search.best["number"] == chosen


def test_changed_configuration_is_not_silently_reused(done, tmp_path):
    spec = smoke()
    spec["models"]["bpr"]["overrides"] = ["model.embedding_dim=16"]
    with pytest.raises(
        FusionrecError, match=r"seed1: holds a run of another configuration \(differs at model.embedding_dim\)"
    ):
        run_benchmark(spec, done.out, only_report=False, log=quiet)


@pytest.mark.skipif(torch.cuda.is_available(), reason="train.device=auto picks CUDA here")
def test_runs_recorded_before_device_auto_existed_are_reused(done, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(done.out, out)
    for path in out.rglob("record.json"):  # as a run from before train.device=auto recorded it
        record = json.loads(path.read_text())
        record["config"]["train"]["device"] = "cpu"
        path.write_text(json.dumps(record))
    from fusionrec import api

    counter = Counter()
    monkeypatch.setattr(api, "train", counter)
    run_benchmark(smoke(), out, log=quiet)
    assert counter.calls == 0


def _expect(done, shift_in_se: float) -> dict:
    """The smoke spec expecting bpr's measured ndcg@20 mean shifted by ``shift_in_se`` combined SEs."""
    spec = smoke()
    got = [c.record["metrics"]["test"]["ndcg@20"] for c in done.cells if c.model == "bpr"]
    std = float(np.std(got, ddof=1))
    se = float(np.sqrt(2 * (std / np.sqrt(len(got))) ** 2))  # run and expected alike: same std, same n
    spec["expected"] = {
        "provenance": "test",
        "n": len(got),
        "floor": 0.0,
        "results": {"synthetic": {"bpr": {"ndcg@20": {"mean": float(np.mean(got)) + shift_in_se * se, "std": std}}}},
    }
    return spec


def test_check_passes_within_and_fails_outside_tolerance(done):
    inside = run_benchmark(_expect(done, 1.0), done.out, check=True, only_report=True, log=quiet)
    assert inside.check_passed is True and len(inside.check) == 1
    assert inside.check[0].message.startswith("ok   synthetic/bpr test ndcg@20: mean ")
    outside = run_benchmark(_expect(done, 4.0), done.out, check=True, only_report=True, log=quiet)
    assert outside.check_passed is False
    assert outside.check[0].message.startswith("FAIL synthetic/bpr test ndcg@20: mean ")
    assert "(-4.0 SE)" in outside.check[0].message
    text = (done.out / "results.md").read_text()
    assert "## Check" in text and "0 of 1 means within tolerance" in text
    checked = json.loads((done.out / "results.json").read_text())["check"]
    assert checked[0]["kind"] == "mean" and checked[0]["ok"] is False


def test_cli_check_exit_status_and_per_cell_message(done, tmp_path):
    from typer.testing import CliRunner

    from fusionrec.cli.main import app

    runner = CliRunner()
    passing, failing = tmp_path / "pass.yaml", tmp_path / "fail.yaml"
    passing.write_text(yaml.safe_dump(_expect(done, 0.0)))
    bad_spec = _expect(done, 4.0)
    bad_spec["expected"]["orderings"] = {"synthetic": {"ndcg@20": [["vbpr", ">", "bpr"], ["bpr", ">", "vbpr"]]}}
    failing.write_text(yaml.safe_dump(bad_spec))
    ok = runner.invoke(app, ["benchmark", str(passing), "--out", str(done.out), "--only-report", "--check"])
    assert ok.exit_code == 0, ok.output
    assert "check passed" in ok.output and "| bpr (reference) |" in ok.output
    bad = runner.invoke(app, ["benchmark", str(failing), "--out", str(done.out), "--only-report", "--check"])
    assert bad.exit_code == 1
    assert "FAIL synthetic/bpr test ndcg@20: mean" in bad.output
    # exactly one of the two opposite claims fails, one line naming it
    claims = {line for line in bad.output.splitlines() if line.startswith("FAIL synthetic test ndcg@20: claimed")}
    assert len(claims) == 1 and "ok   synthetic test ndcg@20: claimed" in bad.output, bad.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(smoke(sedds=[1])))
    err = runner.invoke(app, ["benchmark", str(wrong), "--out", str(tmp_path / "o")])
    assert err.exit_code == 2 and "unknown key 'sedds'" in err.output and "Traceback" not in err.output


def test_only_report_lists_missing_runs(done, tmp_path):
    result = run_benchmark(smoke(), tmp_path / "empty", only_report=True, check=True, log=quiet)
    assert not any(c.finished for c in result.cells)
    assert result.check_passed is False and "no finished run" in result.check[0].message
    assert "n/a" in (tmp_path / "empty" / "results.md").read_text()


def test_table_cells_say_when_seeds_are_missing():
    from fusionrec.benchmark.report import _ms

    assert _ms({"mean": 0.25, "std": 0.01, "values": [0.24, 0.25, 0.26]}, 3) == "0.2500 ± 0.0100"
    assert _ms({"mean": 0.25, "std": 0.0, "values": [0.25]}, 3) == "0.2500 (1 of 3 seeds)"  # no fake ± 0
    assert _ms({"mean": 0.25, "std": 0.01, "values": [0.24, 0.26]}, 3) == "0.2500 ± 0.0100 (2 of 3 seeds)"
    assert _ms({"mean": None, "std": None, "values": []}, 3) == "n/a"


def test_parallel_jobs_submit_picklable_work(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, *args):
            submitted.append(pickle.dumps((fn, args)))  # what a process pool would send
            return super().submit(fn, *args)

    monkeypatch.setattr(run_mod, "_executor", lambda jobs: Recording(max_workers=1))
    spec = smoke(models={"bpr": SMOKE["models"]["bpr"]}, expected=None)
    result = run_benchmark(spec, tmp_path / "par", jobs=2, log=quiet)
    assert len(submitted) == 2 and all(c.finished for c in result.cells)
    assert os.path.exists(tmp_path / "par" / "runs" / "synthetic" / "bpr" / "seed2" / "test_per_user.npz")


def test_grid_search_tries_every_combination_once_in_order(tmp_path, monkeypatch):
    spec = smoke(seeds=[1])
    spec.pop("expected", None)
    spec["models"] = {
        "bpr": {
            "model": "bpr",
            "overrides": ["model.embedding_dim=8"],
            "search": {
                "trials": 4,
                "sampler": "grid",
                "space": {
                    "train.lr": {"type": "categorical", "choices": [0.01, 0.001]},
                    "model.reg_weight": {"type": "categorical", "choices": [0.0, 0.001]},
                },
            },
        }
    }
    spec["reference"] = "bpr"
    result = run_benchmark(spec, tmp_path / "grid", log=quiet)
    asked = [t["params"] for t in result.searches[0].trials]
    assert asked == [{"train.lr": lr, "model.reg_weight": reg} for lr in (0.01, 0.001) for reg in (0.0, 0.001)]
    bad = copy.deepcopy(spec)
    bad["models"]["bpr"]["search"]["trials"] = 5
    with pytest.raises(ConfigError, match="exceeds the 4 grid combinations"):
        load_spec(bad)
    bad["models"]["bpr"]["search"]["trials"] = 2
    bad["models"]["bpr"]["search"]["space"]["train.lr"] = {"type": "float", "low": 1e-3, "high": 1e-2}
    with pytest.raises(ConfigError, match="categorical parameters only"):
        load_spec(bad)


def test_models_option_trains_only_those_models_and_reports_the_rest_as_found(done, tmp_path, monkeypatch):
    import shutil

    from fusionrec import api

    out = tmp_path / "partial"
    shutil.copytree(done.out, out)
    shutil.rmtree(out / "runs" / "synthetic" / "vbpr")
    counter = Counter()
    monkeypatch.setattr(api, "train", counter)
    again = run_benchmark(smoke(), out, log=quiet, models=["bpr"])  # bpr is finished: nothing to train
    assert counter.calls == 0
    assert {c.model for c in again.cells if not c.finished} == {"vbpr"}
    with pytest.raises(FusionrecError, match="--models: nope not in the spec"):
        run_benchmark(smoke(), out, log=quiet, models=["nope"])
    with pytest.raises(FusionrecError, match="--seeds"):
        run_benchmark(smoke(), out, log=quiet, seeds=[7])
    monkeypatch.undo()
    only_seed_2 = run_benchmark(smoke(), out, log=quiet, models=["vbpr"], seeds=[2])
    assert {(c.model, c.seed) for c in only_seed_2.cells if not c.finished} == {("vbpr", 1)}


def test_column_titles_name_the_cut_off_only_where_there_is_one():
    from fusionrec.benchmark.report import _title

    assert [_title(m) for m in ("ndcg@10", "hit_rate@20", "mrr")] == ["NDCG@10", "HitRate@20", "MRR"]


# ----------------------------------------------------------------------------------------- --check on means
def _check_spec(results: dict | None = None, orderings: dict | None = None, seeds=(1, 2, 3), **expected):
    """A spec of three models on one data set (validated without resolving any run configuration)."""
    from fusionrec.benchmark.spec import BenchmarkSpec

    return BenchmarkSpec.model_validate(
        {
            "name": "unit",
            "seeds": list(seeds),
            "reference": "a",
            "datasets": {"d": {"name": "synthetic"}},
            "models": {m: {"model": "bpr"} for m in ("a", "b", "c")},
            "expected": {
                "provenance": "hand-made",
                **expected,
                **({"results": results} if results else {}),
                **({"orderings": orderings} if orderings else {}),
            },
        }
    )


def _cells(values: dict[str, list[float | None]], metric: str = "ndcg@20", seeds=(1, 2, 3)) -> list:
    """Finished final runs holding the given test values per model, one per seed (None: missing run)."""
    out = []
    for model, per_seed in values.items():
        for seed, value in zip(seeds, per_seed):
            record = None if value is None else {"status": "early_stopping", "metrics": {"test": {metric: value}}}
            out.append(run_mod.CellResult("d", model, seed, Path("/nonexistent"), record))
    return out


def test_check_fails_a_mean_4_se_off_that_every_per_seed_band_lets_through():
    from fusionrec.benchmark.report import check

    expected, std, n = 0.30, 0.01, 3
    spread = [-0.001, 0.0, 0.001]  # the measured seeds agree closely: sample std 0.001
    se = np.sqrt((0.001 / np.sqrt(3)) ** 2 + (std / np.sqrt(n)) ** 2)  # sqrt(se_run^2 + se_expected^2)
    spec = _check_spec({"d": {"a": {"ndcg@20": {"mean": expected, "std": std}}}}, n=n, z=3)
    for drift, ok in ((4.0, False), (-4.0, False), (2.9, True), (0.0, True)):
        values = [expected + drift * se + s for s in spread]
        # the old check (every seed within max(3 std, 0.01) of the expected value) passes them all
        assert all(abs(v - expected) <= max(3 * std, 0.01) for v in values)
        [line] = check(spec, _cells({"a": values}))
        assert line.ok is ok, line.message
        assert line.kind == "mean" and line.value == pytest.approx(expected + drift * se)
        assert line.se == pytest.approx(se) and line.tolerance == pytest.approx(3 * se)
        assert f"({drift:+.1f} SE)" in line.message
    # se given instead of std: the same bound; one seed only: the expected std stands in for the run's
    spec_se = _check_spec({"d": {"a": {"ndcg@20": {"mean": expected, "se": std / np.sqrt(n)}}}}, n=n)
    assert not check(spec_se, _cells({"a": [expected + 4 * se + s for s in spread]}))[0].ok
    one = _check_spec({"d": {"a": {"ndcg@20": {"mean": expected, "std": std}}}}, seeds=(1,), n=n)
    [line] = check(one, _cells({"a": [expected + 0.02]}, seeds=(1,)))
    assert line.se == pytest.approx(np.sqrt(std**2 + std**2 / n)) and line.ok  # 0.02 < 3 * 0.0115


def test_check_floor_for_deterministic_cells_and_missing_seeds():
    from fusionrec.benchmark.report import check

    spec = _check_spec({"d": {"a": {"ndcg@20": {"mean": 0.25, "std": 0.0}}}}, floor=0.001)
    assert check(spec, _cells({"a": [0.2509] * 3}))[0].ok  # se 0: the floor decides
    assert not check(spec, _cells({"a": [0.2511] * 3}))[0].ok
    [line] = check(spec, _cells({"a": [0.25, None, 0.25]}))
    assert not line.ok and "no finished run for seed(s) 2" in line.message


def test_check_orderings_on_means_swapped_fails_correct_passes():
    from fusionrec.benchmark.report import check

    values = {"a": [0.30, 0.31, 0.29], "b": [0.28, 0.32, 0.27], "c": [0.10, 0.11, 0.12]}  # means 0.30, 0.29, 0.11
    claims = {
        "d": {
            "ndcg@20": [
                ["a", ">", "b"],
                ["b", "<", "a"],
                ["c", "<", "b", "every_seed"],
                ["b", ">", "a"],
                ["a", ">", "b", "every_seed"],
            ]
        }
    }
    lines = check(_check_spec(orderings=claims), _cells(values))
    assert [line.ok for line in lines] == [True, True, True, False, False]
    assert all(line.kind == "ordering" for line in lines)
    assert lines[0].message.startswith("ok   d test ndcg@20: claimed a > b; means 0.3000 vs 0.2900 (diff +0.0100)")
    assert lines[3].message.startswith("FAIL d test ndcg@20: claimed b > a; the means are not in that order")
    # the means hold but seed 2 does not: every_seed fails, naming the seed
    assert "claimed a > b on every seed; not on seed(s) 2:" in lines[4].message
    assert lines[4].value == pytest.approx(0.01)
    # one line per broken claim; a claim on a missing run fails
    missing = check(
        _check_spec(orderings={"d": {"ndcg@20": [["a", ">", "c"]]}}),
        _cells({"a": [0.3, 0.3, 0.3], "c": [0.1, None, 0.1]}),
    )
    assert not missing[0].ok and "no finished run for c seed 2" in missing[0].message


def test_shipped_orderings_hold_on_their_recorded_means():
    """Every shipped claim agrees with the spec's own recorded means (the numbers behind docs/results.md)."""
    from fusionrec.benchmark.spec import BenchmarkSpec

    for path in sorted(SPECS.glob("*.yaml")):
        spec = BenchmarkSpec.model_validate(yaml.safe_load(path.read_text()))
        for data, by_metric in (spec.expected.orderings if spec.expected else {}).items():
            for metric, claims in by_metric.items():
                for claim in claims:
                    left = spec.expected.results[data][claim.left][metric].mean
                    right = spec.expected.results[data][claim.right][metric].mean
                    assert (left > right) if claim.op == ">" else (left < right), (path.name, data, metric, claim)


# ----------------------------------------------------------------------------------------- trials never read test
def test_search_trials_train_without_test_and_only_final_runs_read_it(tmp_path, monkeypatch):
    from fusionrec import api
    from fusionrec.registry import task_of

    task_cls = task_of("lightgcn").obj
    current: list[str] = []
    evaluated: list[tuple[str, str]] = []  # (run folder being trained, split evaluated)
    real_train, real_evaluate = api.train, task_cls.evaluate

    def train(*args, **kwargs):
        current.append(str(kwargs.get("run_dir") or kwargs.get("resume")))
        try:
            return real_train(*args, **kwargs)
        finally:
            current.pop()

    def evaluate(self, model, split="valid", *args, **kwargs):
        evaluated.append((current[-1] if current else "?", split))
        return real_evaluate(self, model, split, *args, **kwargs)

    monkeypatch.setattr(api, "train", train)
    monkeypatch.setattr(task_cls, "evaluate", evaluate)
    spec = smoke(
        seeds=[1, 2],
        models={"lightgcn": copy.deepcopy(SMOKE["models"]["lightgcn"])},
        reference="lightgcn",
        expected=None,
    )
    spec["models"]["lightgcn"]["search"]["trials"] = 2
    out = tmp_path / "search-test"
    result = run_benchmark(spec, out, log=quiet)

    tested = [where for where, split in evaluated if split == "test"]
    assert not [w for w in tested if "/search/" in w], tested  # no trial evaluated test
    assert sorted(tested) == sorted(str(c.run_dir) for c in result.cells)  # each final run once
    assert any(split == "valid" and "/search/" in where for where, split in evaluated)  # trials did validate
    trial_dirs = sorted((out / "search" / "synthetic" / "lightgcn").glob("trial[0-9]*"))
    assert len(trial_dirs) == 2
    for folder in trial_dirs:
        record = json.loads((folder / "record.json").read_text())
        assert record["metrics"]["test"] is None and record["metrics"]["valid"]
        assert record["evaluation"]["test"] == "not read (test=False)"
        assert not (folder / "test_per_user.npz").exists()
    for cell in result.cells:
        assert cell.record["metrics"]["test"] and (cell.run_dir / "test_per_user.npz").exists()
    # the report shows trials by their parameters and validation value only
    searches = json.loads((out / "results.json").read_text())["searches"]
    for trial in searches[0]["trials"] + [searches[0]["best"]]:
        assert set(trial) <= {"number", "params", "value", "status", "best_epoch", "run_dir"}
    searched = (out / "results.md").read_text().split("## Searches (validation only)")[1]
    assert "test" not in searched.split("\n## ")[0].lower()


def test_report_drops_anything_but_validation_from_stored_trials(done, tmp_path):
    import shutil

    out = tmp_path / "planted"
    shutil.copytree(done.out, out)
    path = out / "search" / "synthetic" / "lightgcn" / "trials.json"
    stored = json.loads(path.read_text())
    for trial in stored["trials"]:
        trial["test"] = {"ndcg@20": 0.99}  # as if a trial had carried a test value
    path.write_text(json.dumps(stored))
    run_benchmark(smoke(), out, only_report=True, log=quiet)
    [search] = json.loads((out / "results.json").read_text())["searches"]
    assert search["trials"] and all("test" not in trial for trial in search["trials"] + [search["best"]])
