"""Do the news models find the planted visual signal, and do their region weights point at it?

On ``news-synthetic`` (clicks depend on a visual cluster that only one region of each image shows, at a
random place, and on a title topic), train NRMS (text only), MM-Rec and VLSNR (with and without their image
branch) with one seed through ``fusionrec.api.train``, then report each run's test AUC and, for the models
with an image branch, how often the region with the largest attention weight of a news is its planted region
(chance: 1 / num_regions), over every news with an image, after training and at initialisation (the
planted region has the largest norm, which an untrained attention may already favour).

    OMP_NUM_THREADS=1 python benchmarks/news_explain_synthetic.py --impressions 4000 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np
import torch

VARIANTS = {
    "nrms": ("nrms", []),
    "mm_rec": ("mm_rec", []),
    "mm_rec-text": ("mm_rec", ["model.use_image=false"]),
    "vlsnr": ("vlsnr", []),
    "vlsnr-text": ("vlsnr", ["model.use_image=false"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from fusionrec import api
    from fusionrec.registry import MODELS

    out = args.out or tempfile.mkdtemp(prefix="news-explain-")
    data = [
        f"data.options.num_impressions={args.impressions}",
        "data.options.num_users=400",
        "data.options.num_news=600",
    ]
    train = [f"train.epochs={args.epochs}", "train.patience=3", f"train.seed={args.seed}", "train.num_threads=1"]
    for label, (model, extra) in VARIANTS.items():
        run = api.train(
            model, "news-synthetic", overrides=[*data, *train, *extra], run_dir=os.path.join(out, label), progress=False
        )
        row = {"model": label, "test_auc": round(run.record["metrics"]["test"]["auc"], 4)}
        row["best_epoch"] = run.record.get("best_epoch")
        image = getattr(run.model, "image", None)
        if image is not None:
            dataset = run.dataset
            has = np.flatnonzero(dataset.modalities["image_regions"].mask)
            planted = dataset.items["planted_region"].to_numpy()[has]
            torch.manual_seed(args.seed)
            config = MODELS.entry(model).config(**run.record["config"]["model"])
            untrained = MODELS.get(model).from_dataset(config, dataset)
            for key, net in (("planted_region_is_top", run.model), ("planted_region_is_top_untrained", untrained)):
                with torch.no_grad():
                    weights = net.eval().encode_news(torch.from_numpy(has))["regions"].numpy()  # (N, R)
                row[key] = round(float((weights.argmax(1) == planted).mean()), 4)
            row["chance"] = round(1 / weights.shape[1], 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
