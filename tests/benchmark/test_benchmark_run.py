"""The benchmark runner's progress lines."""


def test_the_progress_line_shows_the_metric_each_family_selects_on():
    from fusionrec.benchmark.run import _summary

    def record(selection, test):
        return {
            "status": "max_epochs",
            "best_epoch": 3,
            "epochs_run": 4,
            "timings": {"train_s_per_epoch": 1.5},
            "evaluation": {"selection": f"best epoch by valid {selection}"},
            "metrics": {"test": test},
        }

    assert _summary(record("mrr", {"mrr": 0.25, "mr": 40.0})).endswith("test mrr 0.2500")
    assert _summary(record("logloss", {"auc": 0.7, "logloss": 0.5})).endswith("test logloss 0.5000")
    shown = _summary(record("ndcg@10", {"recall@20": 0.3, "ndcg@20": 0.2, "ndcg@10": 0.1}))
    assert shown.endswith("test recall@20 0.3000, ndcg@20 0.2000, ndcg@10 0.1000")
    assert _summary(record("mrr", {})).endswith("test not evaluated")
