"""microsoft/recommenders' NRMS (TensorFlow) and fusionrec's NRMS on the same impressions, side by side.

1. ``export`` (fusionrec's venv): a prepared news data set (its ``impressions`` table, the title tokens the
   news task builds) becomes MIND files: ``train/behaviors.tsv`` (training impressions), ``valid/`` and ``test/behaviors.tsv``
   (test impressions with a click and a non-click), ``news.tsv``, ``word_dict.pkl``, ``uid2index.pkl`` and a
   random ``embedding.npy`` (no GloVe offline: both libraries train their word vectors from the same kind of
   start). Histories are cut to the latest 50 clicks here, because recommenders' iterator keeps the first 50.
2. ``run`` (a throwaway venv with ``tensorflow-cpu<2.16``, ``recommenders`` 1.2.1 installed ``--no-deps`` plus
   tqdm, pyyaml, retrying, requests, scikit-learn, ``pandas<3``, ``numpy<2``; TensorFlow 2.16+ has no
   ``tensorflow.compat.v1.keras``, which recommenders' news layers import): trains NRMSModel for ``--epochs``
   epochs (no selection) and prints its test group AUC, mean MRR, nDCG@5/10 as one JSON line.

    python benchmarks/peers/recommenders_news_side_by_side.py export news-movielens-posters runs/mind-posters
    runs/peer-news-venv/bin/python benchmarks/peers/recommenders_news_side_by_side.py run runs/mind-posters --epochs 5

Nothing here is imported by fusionrec.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path


def export(data: str, out: Path, max_history: int = 50, title_length: int = 30) -> None:
    import numpy as np

    from fusionrec.data import load_dataset
    from fusionrec.tasks.news.task import NewsTask, NewsTaskConfig
    from fusionrec.training.config import TrainConfig

    dataset = load_dataset(data)
    task = NewsTask.build(NewsTaskConfig(title_length=title_length), TrainConfig(batch_size=64), dataset)
    table, ids = dataset.tables["impressions"], dataset.item_ids
    vocab = task.text.vocab  # the news task's vocabulary: words of news shown in training impressions
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "news.tsv", "w", encoding="utf-8") as fh:
        for index, news in enumerate(ids):
            words = " ".join(vocab[w] for w in task.text.ids[index] if w > 1)  # unknown words left out
            fh.write(f"{news}\tc\ts\t{words}\t\t\t\t\n")
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        (out / split).mkdir(exist_ok=True)
        rows = table[(table["split"] == code).to_numpy() & task.scorable]
        with open(out / split / "behaviors.tsv", "w", encoding="utf-8") as fh:
            for n, row in enumerate(rows.itertuples(), 1):
                history = " ".join(str(ids[h]) for h in list(row.history)[-max_history:])
                shown = " ".join(f"{ids[c]}-{int(y)}" for c, y in zip(row.candidates, row.labels))
                fh.write(f"{n}\tU{row.user}\t11/15/2019 8:00:00 AM\t{history}\t{shown}\n")
    with open(out / "word_dict.pkl", "wb") as fh:
        pickle.dump({w: i for i, w in enumerate(vocab) if i > 1}, fh)
    with open(out / "uid2index.pkl", "wb") as fh:
        pickle.dump({f"U{u}": u + 1 for u in range(dataset.num_users)}, fh)
    np.save(out / "embedding.npy", np.random.default_rng(0).normal(0, 0.1, (len(vocab), 64)).astype(np.float32))
    print(
        json.dumps(
            {
                "exported": str(out),
                "news": len(ids),
                "vocab": len(vocab),
                "test_impressions": int(((table["split"] == 2).to_numpy() & task.scorable).sum()),
            }
        )
    )


YAML = """data:
  title_size: {title}
  his_size: {history}
  data_format: news
  npratio: 4
info:
  metrics: [group_auc, mean_mrr, ndcg@5;10]
  show_step: 100000
model:
  attention_hidden_dim: 64
  word_emb_dim: 64
  dropout: 0.2
  head_num: 4
  head_dim: 16
  model_type: nrms
train:
  batch_size: 64
  epochs: {epochs}
  learning_rate: 0.001
  loss: cross_entropy_loss
  optimizer: adam
  support_quick_scoring: true
"""


def run(folder: Path, epochs: int, seed: int, title_length: int = 30, max_history: int = 50) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from recommenders.models.newsrec.io.mind_iterator import MINDIterator
    from recommenders.models.newsrec.models.nrms import NRMSModel
    from recommenders.models.newsrec.newsrec_utils import prepare_hparams

    (folder / "nrms.yaml").write_text(YAML.format(title=title_length, history=max_history, epochs=epochs))
    hparams = prepare_hparams(
        str(folder / "nrms.yaml"),
        wordEmb_file=str(folder / "embedding.npy"),
        wordDict_file=str(folder / "word_dict.pkl"),
        userDict_file=str(folder / "uid2index.pkl"),
    )
    model = NRMSModel(hparams, MINDIterator, seed=seed)
    news = str(folder / "news.tsv")
    start = time.perf_counter()
    model.fit(news, str(folder / "train" / "behaviors.tsv"), news, str(folder / "valid" / "behaviors.tsv"))
    seconds = time.perf_counter() - start
    result = model.run_eval(news, str(folder / "test" / "behaviors.tsv"))
    print(
        json.dumps(
            {
                "library": "recommenders NRMS",
                "seed": seed,
                "epochs": epochs,
                "s_per_epoch": round(seconds / epochs, 1),
                **{k: round(float(v), 4) for k, v in result.items()},
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export")
    e.add_argument("data")
    e.add_argument("out", type=Path)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--epochs", type=int, default=5)
    r.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.command == "export":
        export(args.data, args.out)
    else:
        run(args.folder, args.epochs, args.seed)


if __name__ == "__main__":
    sys.exit(main())
