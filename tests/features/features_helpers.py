"""Helpers of the feature tests (a uniquely named module: other test folders have a conftest.py too):
image files with a missing and a corrupt one, counting fake encoders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fusionrec.features.text import TextEncoder, TokenOutput
from fusionrec.features.vision import ImageEncoder

TEXTS = [
    "a red cotton shirt",
    "blue denim jeans",
    None,
    "",
    "a red wool scarf",
    "blue denim jeans",
    "green rain jacket",
    "black leather boots",
]


def write_images(folder: Path, n: int) -> list[str | None]:
    """n items: PNG/JPEG files of different colours, one missing value, one missing file, one corrupt
    file. Paths are absolute except odd ones, given relative to a sibling data set folder."""
    try:
        from PIL import Image
    except ImportError:  # no Pillow: no images (the image tests skip)
        return [None] * n
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[str | None] = []
    for i in range(n):
        if i == 2:
            paths.append(None)  # no image
        elif i == 3:
            paths.append(str(folder / "gone.jpg"))  # file does not exist
        elif i == 4:
            (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
            paths.append(str(folder / "broken.jpg"))
        else:
            rng = np.random.default_rng(i)
            arr = (rng.random((40 + i, 30 + 2 * i, 3)) * 255).astype(np.uint8)
            arr[..., i % 3] = 250
            path = folder / f"img{i}.{'png' if i % 2 else 'jpg'}"
            Image.fromarray(arr).save(path)
            paths.append(f"../{folder.name}/{path.name}" if i % 2 else str(path))
    return paths


def fake_vector(text: str, dim: int = 8) -> np.ndarray:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class CountingTextEncoder(TextEncoder):
    """Deterministic vectors from a text's hash; counts calls; can be told to fail (interrupt)."""

    name = "counting"
    cache_id = "counting-v1"
    dim = 8
    default_batch_size = 2

    def __init__(self, interrupt_after: int | None = None):
        self.calls = 0
        self.seen: list[str] = []
        self.interrupt_after = interrupt_after

    def encode(self, texts):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        self.seen.extend(texts)
        return np.stack([fake_vector(t) for t in texts])

    def encode_tokens(self, texts, max_length=32):
        self.calls += 1
        ids = np.zeros((len(texts), max_length), np.int64)
        emb = np.zeros((len(texts), max_length, self.dim), np.float32)
        for b, t in enumerate(texts):
            words = t.split()[:max_length]
            ids[b, : len(words)] = np.arange(1, len(words) + 1)
            emb[b, : len(words)] = np.stack([fake_vector(w) for w in words])
        return TokenOutput(ids, emb, ids > 0)


class TinyConvEncoder(ImageEncoder):
    """A random 8x8-stride convolution: 32x32 input, 4x4 = 16 regions of 4 channels."""

    name = "tiny-conv"
    image_size = (32, 32)
    default_batch_size = 2

    def __init__(self):
        super().__init__("cpu")
        self.batches = 0

    @property
    def cache_id(self) -> str:
        return "tiny-conv-v1"

    def _load(self):
        import torch

        torch.manual_seed(0)
        return torch.nn.Conv2d(3, 4, kernel_size=8, stride=8)

    def _features(self, model, pixels):
        self.batches += 1
        return model(pixels)
