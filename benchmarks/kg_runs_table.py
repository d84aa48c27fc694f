"""A markdown table of finished kg runs: filtered test MRR, MR, Hits@1/3/10, the selected epoch, s/epoch,
and a paired Wilcoxon signed-rank test per test triple (its reciprocal rank, mean of the head and tail
queries) of every run against a reference run, Holm-adjusted over the table's comparisons.

    python benchmarks/kg_runs_table.py --reference "MKGformer=RUN_A" "text only=RUN_B" "no PGI=RUN_C" ...

Each argument is LABEL=RUN_DIR (a folder ``fusionrec train`` wrote, or a benchmark's ``runs/<data>/<model>/
seed<N>``); ``--reference`` names the run the others are tested against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusionrec.benchmark.report import holm, paired_wilcoxon
from fusionrec.training.record import load_per_user


def labelled_run(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not (Path(path) / "record.json").exists():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=RUN_DIR with a record.json in RUN_DIR")
    return label, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=labelled_run, required=True)
    parser.add_argument("runs", type=labelled_run, nargs="+")
    parser.add_argument("--metric", default="mrr", help="the per-triple value the test pairs")
    args = parser.parse_args()

    reference = load_per_user(args.reference[1])
    tests = [paired_wilcoxon(*_pairs(load_per_user(path), reference, args.metric)) for _, path in args.runs]
    adjusted = holm([t["p"] for t in tests])
    print(
        f"| run | MRR | MR | Hits@1 | Hits@3 | Hits@10 | best epoch | s/epoch | vs {args.reference[0]}: "
        f"mean diff of per-triple {args.metric} | p | Holm p |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(_row(*args.reference) + " - | - | - |")
    for (label, path), test, p_holm in zip(args.runs, tests, adjusted):
        print(_row(label, path) + f" {test['mean_diff']:+.4f} | {test['p']:.2g} | {p_holm:.2g} |")
    print(f"\n{tests[0]['users'] if tests else 0} test triples paired per comparison")


def _pairs(mine: dict, theirs: dict, metric: str):
    return mine["users"], mine[metric], theirs["users"], theirs[metric]


def _row(label: str, path: Path) -> str:
    record = json.loads((path / "record.json").read_text())
    test, epochs = record["metrics"]["test"], len(record["history"])
    seconds = record["timings"]["train_s_per_epoch"]
    return (
        f"| {label} | {test['mrr']:.4f} | {test['mr']:,.0f} | {test['hits@1']:.4f} | {test['hits@3']:.4f} | "
        f"{test['hits@10']:.4f} | {record['best_epoch']} of {epochs} | {seconds:.0f} |"
    )


if __name__ == "__main__":
    main()
