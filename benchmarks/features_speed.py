"""Feature extraction speed on this machine: texts/s, images/s, and a cached rerun.

    FUSIONREC_HOME=$(mktemp -d) .venv/bin/python benchmarks/features_speed.py [--threads 1]

Data sets are prepared under $FUSIONREC_HOME as usual; the feature cache of the cold runs is a
fresh temporary folder, so every input is encoded. The rerun is a second extract_features call
with a new encoder object by name, as a second CLI invocation would do (no model is loaded).
Text: ml-100k item texts (title, year, genres; short) and the first --limit movielens-small texts
(with tags; longer) with all-MiniLM-L6-v2. Images: the 188 movielens-small posters with EfficientNet-Lite0,
pooled + 7x7 grid. The machine may be shared: the load average is printed with the figures, and throughput per
CPU-second of this process (less sensitive to other jobs) next to the wall-clock rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from fusionrec.data import DataConfig, prepare
from fusionrec.features import extract_features, get_image_encoder, get_text_encoder
from fusionrec.features.extract import _load_tables


def load() -> str:
    return "load avg " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def first_items(folder, limit: int):
    """The data set's first ``limit`` items, in memory (features are not written back)."""
    data = _load_tables(folder)
    data.items = data.items.iloc[:limit].reset_index(drop=True)
    data.item_ids = data.item_ids[:limit]
    data.meta.pop("path", None)
    return data


def run(folder, modality: str, make_encoder, label: str, unit: str, **kw) -> None:
    real_home = os.environ.get("FUSIONREC_HOME")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FUSIONREC_HOME"] = tmp  # an empty feature cache
        try:
            encoder = make_encoder()
            start = time.perf_counter()
            encoder.load()
            loaded = time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            cold = extract_features(folder, modality, encoder=encoder, progress=False, **kw)
            cold_s, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
            start = time.perf_counter()
            warm = extract_features(folder, modality, progress=False, **kw)  # by name: nothing loaded
            warm_s = time.perf_counter() - start
        finally:
            if real_home is None:
                os.environ.pop("FUSIONREC_HOME", None)
            else:
                os.environ["FUSIONREC_HOME"] = real_home
    print(
        f"{label}: load {loaded:.1f} s; cold {cold.encoded} {unit} in {cold_s:.1f} s = "
        f"{cold.encoded / cold_s:.1f} {unit}/s ({cold.encoded / cold_cpu:.1f} per CPU-second; written: {', '.join(cold.written) or 'unchanged'}); "
        f"cached rerun {warm_s:.2f} s ({warm.cached} hits, {warm.encoded} encoded); {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--limit", type=int, default=2000, help="movielens-small texts to encode")
    parser.add_argument("--skip", default="", help="comma-separated: ml-100k,movielens-text,posters")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; {load()}")
    if "ml-100k" not in skip:
        run(
            prepare(DataConfig(name="ml-100k")),
            "text",
            get_text_encoder,
            "ml-100k text, all-MiniLM-L6-v2",
            "texts",
            batch_size=args.batch_size,
        )
    if "movielens-text" not in skip:
        run(
            first_items(prepare(DataConfig(name="movielens-small")), args.limit),
            "text",
            get_text_encoder,
            f"movielens-small text (title, genres, tags; first {args.limit}), all-MiniLM-L6-v2",
            "texts",
            batch_size=args.batch_size,
        )
    if "posters" not in skip:
        run(
            prepare(DataConfig(name="movielens-small")),
            "image",
            get_image_encoder,
            "movielens-small posters, EfficientNet-Lite0 pooled + 7x7 grid",
            "images",
            regions=True,
            batch_size=args.batch_size,
        )


if __name__ == "__main__":
    main()
