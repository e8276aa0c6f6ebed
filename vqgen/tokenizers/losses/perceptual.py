"""Perceptual loss on a frozen feature network, and the one network vqgen can build from a user's file: the
convolutional trunk of torchvision's VGG16 (LPIPS's and taming's backbone), from a local state dict.

Nothing is ever downloaded: ``torchvision.models.vgg16(weights=None)`` is built on the meta device and
the user's weights are assigned into it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import CheckpointError, ConfigError, ShapeError
from vqgen.tokenizers.losses.reconstruction import check_same_shape

FeatureNetwork = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]

#: Indices in ``torchvision.models.vgg16().features`` of the ReLUs LPIPS reads: relu1_2 ... relu5_3.
VGG16_TAPS = (3, 8, 15, 22, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Distance between unit-normalised features of a frozen, user-supplied network (LPIPS without learned
    per-channel weights).

    ``feature_network`` maps a batch ``[B, C, *spatial]`` to one feature tensor ``[B, D, *positions]`` or a
    list/tuple of them. For each layer the features are divided by their l2 norm over channels, and the
    squared distance between the two unit vectors (summed over channels, so in ``[0, 4]``) is averaged over
    batch and positions; the layers are combined with ``layer_weights`` (default all 1).

    The network's parameters are frozen and it stays in eval mode even when this module is put in training
    mode; gradients still flow through it to the reconstruction. Nothing is downloaded: vqgen ships no
    default network (:func:`load_vgg16_features` builds one from a local file).

    Shapes: ``reconstruction``, ``target`` ``[B, C, *spatial]`` -> scalar.
    """

    def __init__(
        self, feature_network: nn.Module | FeatureNetwork, layer_weights: Sequence[float] | None = None
    ):
        super().__init__()
        if not callable(feature_network):
            raise ConfigError(f"feature_network must be callable, got {type(feature_network).__name__}")
        # A plain callable is kept outside the module tree; an nn.Module is registered so .to() moves it.
        self.feature_network = feature_network
        if isinstance(feature_network, nn.Module):
            feature_network.requires_grad_(False)
            feature_network.eval()
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        if isinstance(self.feature_network, nn.Module):
            self.feature_network.eval()
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.feature_network(x)
        return [features] if isinstance(features, torch.Tensor) else list(features)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_same_shape(reconstruction, target)
        with torch.no_grad():
            target_features = self._features(target)
        features = self._features(reconstruction)
        weights = self.layer_weights if self.layer_weights is not None else [1.0] * len(features)
        if len(weights) != len(features) or len(features) != len(target_features):
            raise ShapeError(
                f"perceptual network returned {len(features)} feature maps but layer_weights has {len(weights)}"
            )
        total = reconstruction.new_zeros(())
        for weight, fake, real in zip(weights, features, target_features):
            fake = F.normalize(fake.float(), dim=1, eps=1e-10)
            real = F.normalize(real.float(), dim=1, eps=1e-10)
            total = total + weight * (fake - real).pow(2).sum(dim=1).mean()
        return total


class VGG16Features(nn.Module):
    """The first ``len(taps)`` of VGG16's relu1_2 / relu2_2 / relu3_3 / relu4_3 / relu5_3 activations.

    ``features`` is (a prefix of) ``torchvision.models.vgg16().features``, ending at the last tap. Inputs
    in ``[-1, 1]`` are mapped to ``[0, 1]`` and normalised with the ImageNet mean and std; one channel is
    repeated to three. Each tap halves the size after the first, so the smaller side must be at least
    ``2 ** (len(taps) - 1)`` (16 for all five).

    Shapes: ``[B, 1 or 3, H, W]`` -> list of ``[B, 64 | 128 | 256 | 512 | 512, H / 2**i, W / 2**i]``.
    """

    def __init__(self, features: nn.Sequential, num_taps: int = 5):
        super().__init__()
        if not 1 <= num_taps <= len(VGG16_TAPS):
            raise ConfigError(f"VGG16 perceptual layers must be 1 to {len(VGG16_TAPS)}, got {num_taps}")
        self.taps = VGG16_TAPS[:num_taps]
        if len(features) != self.taps[-1] + 1:
            raise ConfigError(
                f"VGG16 features for {num_taps} taps need {self.taps[-1] + 1} layers, got {len(features)}"
            )
        for layer in features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False  # a tapped activation must not be overwritten by a later layer
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ShapeError(
                f"the VGG16 perceptual network takes images [B, 1 or 3, H, W], got {tuple(x.shape)}"
            )
        smallest = 2 ** (len(self.taps) - 1)
        if min(x.shape[2:]) < smallest:
            raise ShapeError(
                f"the VGG16 perceptual network with {len(self.taps)} layers needs images of at least "
                f"{smallest}x{smallest}, got {tuple(x.shape[2:])}"
            )
        x = ((x.expand(-1, 3, -1, -1) + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """A state dict from ``path``: safetensors when the name ends in ``.safetensors``, else ``torch.load``
    with ``weights_only=True``. One-line :class:`CheckpointError` when missing, unreadable or not a dict."""
    expected = "a torchvision VGG16 state dict (.pth/.pt or .safetensors)"
    if not path.is_file():
        raise CheckpointError(f"perceptual network file '{path}' does not exist; expected {expected}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as error:  # safetensors raises its own SafetensorError and OSErrors
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise CheckpointError(f"perceptual network file '{path}' is not {expected}: {reason}") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch's message is pages long and suggests unsafe loading: not shown
            raise CheckpointError(
                f"perceptual network file '{path}' is not {expected}: torch.load(weights_only=True) refused it "
                f"({type(error).__name__}; a pickled model or other objects are not read, only tensors)"
            ) from None
    if not (
        isinstance(state, Mapping)
        and state
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise CheckpointError(
            f"perceptual network file '{path}' holds a {type(state).__name__}, not {expected} "
            "(a mapping of parameter names to tensors)"
        )
    return state


def _brief(keys: Sequence[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def load_vgg16_features(path: str | Path, num_taps: int = 5) -> VGG16Features:
    """Build torchvision's VGG16 trunk (no download) and load a user's weights into it.

    The file is a state dict of ``torchvision.models.vgg16()`` (keys ``features.0.weight`` ...;
    ``classifier.*`` entries are ignored) or of its ``features`` alone (``0.weight`` ... ``28.bias``), saved
    with ``torch.save`` (read with ``weights_only=True``) or as safetensors. Only the layers up to the
    ``num_taps``-th tap (relu5_3 for 5) are built and need weights. Missing, unexpected or misshapen keys
    raise a one-line :class:`CheckpointError` naming the file. Returns a frozen float32 module in eval mode.
    """
    import torchvision

    if not 1 <= num_taps <= len(VGG16_TAPS):
        raise ConfigError(f"VGG16 perceptual layers must be 1 to {len(VGG16_TAPS)}, got {num_taps}")
    path = Path(path)
    state = _read_state_dict(path)
    if any(key.startswith("features.") for key in state):
        state = {k[len("features.") :]: v for k, v in state.items() if not k.startswith("classifier.")}
    with torch.device("meta"):  # architecture only: no memory, no initialisation, no download
        full = torchvision.models.vgg16(weights=None).features
    features = full[: VGG16_TAPS[num_taps - 1] + 1]
    wanted = {key: tuple(value.shape) for key, value in features.state_dict().items()}
    known = set(full.state_dict())
    missing = [key for key in wanted if key not in state]  # in layer order: weight, then bias
    unexpected = sorted((key for key in state if key not in known), key=_layer_order)
    misshapen = [key for key in wanted if key in state and tuple(state[key].shape) != wanted[key]]
    what = "torchvision VGG16 `features` weights (0.weight [64, 3, 3, 3] ... 28.bias [512])"
    if missing or unexpected:
        problem = f"missing {_brief(missing)}" if missing else f"unexpected {_brief(unexpected)}"
        raise CheckpointError(f"perceptual network file '{path}' does not hold {what}: {problem}")
    if misshapen:
        key = misshapen[0]
        raise CheckpointError(
            f"perceptual network file '{path}' does not hold {what}: {key} has shape "
            f"{list(state[key].shape)}, expected {list(wanted[key])}"
        )
    features.load_state_dict({key: state[key].float() for key in wanted}, assign=True)
    return VGG16Features(features, num_taps).eval().requires_grad_(False)


def _layer_order(key: str) -> tuple[int, str]:
    index, _, name = key.partition(".")
    return (int(index), name) if index.isdigit() else (10**6, key)
