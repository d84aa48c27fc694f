"""Bad input to a ctr run from the command line: one clear line, exit status 2, no run written.

The CLI's entry point runs in-process (``fusionrec.cli.main.main`` with its argv), so the five cases
cost one import of the library."""

from __future__ import annotations

import re
import sys

import pytest
from test_ctr_readers import write_log

from fusionrec.cli.main import main

FIELDS = ["task.fields.user.source=user_id", "task.fields.price.kind=numeric", "train.epochs=1"]


@pytest.mark.parametrize(
    "log, extra, needle",
    [
        ({"label": 2}, [], r"line 6 label is '2' \(1 row\(s\) not 0/1\); labels must be 0 or 1"),
        ({}, ["task.fields.colour.source=interaction"], "task.fields.colour reads column 'colour'"),
        ({"price": "inf"}, [], "line 7 column 'price' is 'inf', not a finite number"),
        ({"price": "NaN"}, [], "line 7 column 'price' is 'NaN', not a finite number"),
        (
            {"image_rows": 5},
            ["data.modalities.image=image_feat.npy"],
            "image_feat.npy: 5 feature rows, but the log has",
        ),
    ],
    ids=["label-outside-0-1", "field-absent", "inf-numeric", "nan-numeric", "image-file-rows"],
)
def test_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, log, extra, needle):
    path = write_log(tmp_path, **log)
    run_dir = tmp_path / "run"
    argv = ["fusionrec", "train", "-m", "deepfm", "-d", str(path), "--run-dir", str(run_dir), "-q", "data.format=ctr"]
    monkeypatch.setattr(sys, "argv", [*argv, *FIELDS, *extra])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and re.search(needle, lines[0]), lines
    assert not run_dir.exists()
