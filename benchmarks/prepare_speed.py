"""Time data preparation: a 1M-interaction synthetic set, prepared cold, then again from the cache.

Targets (docs/data.md, DESIGN.md "a second run is instant"): cold prepare < 60 s, cached < 2 s.
Uses a temporary FUSIONREC_HOME, so the user's cache is never touched.

    .venv/bin/python benchmarks/prepare_speed.py [--interactions 1000000] [--split random] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import sys
import tempfile
import time

COLD_TARGET_S = 60.0
CACHED_TARGET_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: interactions / 20")
    parser.add_argument("--items", type=int, default=None, help="default: interactions / 50")
    parser.add_argument(
        "--split", default="random", help="split.method (random, loo, temporal, global_time, cold_item)"
    )
    parser.add_argument("--profile", action="store_true", help="print the top functions of the cold prepare")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fusionrec-bench-") as home:
        os.environ["FUSIONREC_HOME"] = home
        from fusionrec.data import DataConfig, load_dataset_dir, prepare
        from fusionrec.data.store import read_manifest

        options = {
            "num_interactions": args.interactions,
            "num_users": args.users or max(2, args.interactions // 20),
            "num_items": args.items or max(2, args.interactions // 50),
        }
        config = DataConfig(name="synthetic", split={"method": args.split})

        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        folder = prepare(config, options)
        if profiler:
            profiler.disable()
        cold = time.perf_counter() - start

        start = time.perf_counter()
        again = prepare(config, options)
        cached = time.perf_counter() - start
        assert again == folder

        start = time.perf_counter()
        dataset = load_dataset_dir(folder)
        load = time.perf_counter() - start

        manifest = read_manifest(folder)
        size_mb = sum(manifest["bytes"].values()) / 2**20
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}")
    print(f"data: synthetic {options} split={args.split}")
    print(
        f"  -> {dataset.num_users:,} users, {dataset.num_items:,} items, {dataset.num_interactions:,} interactions, "
        f"split {manifest['split']}, folder {size_mb:.1f} MiB, fingerprint {manifest['fingerprint']}"
    )
    ok_cold, ok_cached = cold < COLD_TARGET_S, cached + load < CACHED_TARGET_S
    print(f"cold prepare:            {cold:8.2f} s   (target < {COLD_TARGET_S:.0f} s: {'ok' if ok_cold else 'MISSED'})")
    print(f"cached prepare:          {cached:8.4f} s")
    print(f"load of the cached folder: {load:6.4f} s")
    print(
        f"cached prepare + load:   {cached + load:8.4f} s   (target < {CACHED_TARGET_S:.0f} s: "
        f"{'ok' if ok_cached else 'MISSED'})"
    )
    print(f"peak RSS: {peak_mb:.0f} MiB")
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    return 0 if ok_cold and ok_cached else 1


if __name__ == "__main__":
    sys.exit(main())
