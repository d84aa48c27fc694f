"""Benchmarks from one spec: models x data sets x seeds, validation-only searches, a report with
significance, and a check against expected results (``fusionrec benchmark SPEC.yaml``).

Needs the ``bench`` extra (optuna, matplotlib): ``pip install 'fusionrec[bench]'``.
"""

from fusionrec.benchmark.report import holm, paired_wilcoxon
from fusionrec.benchmark.run import BenchmarkResult, run_benchmark
from fusionrec.benchmark.spec import BenchmarkSpec, load_spec

__all__ = ["BenchmarkResult", "BenchmarkSpec", "holm", "load_spec", "paired_wilcoxon", "run_benchmark"]
