"""A user's local VGG16 weights as the perceptual network: loading (torch and safetensors, whole model or
``features``), the five LPIPS taps, ImageNet normalisation, and one-line errors for bad files."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from vqgen.errors import CheckpointError, ConfigError, ShapeError
from vqgen.tokenizers.losses import VGG16_TAPS, PerceptualLoss, TokenizerLoss, load_vgg16_features


def random_vgg16_features() -> nn.Sequential:
    """torchvision's VGG16 ``features`` with random weights, built without the 120M-parameter classifier."""
    with torch.device("meta"):
        features = torchvision.models.vgg16(weights=None).features
    features = features.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in features:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                layer.bias.copy_(0.01 * torch.randn(layer.bias.shape, generator=generator))
    return features.eval()


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A real-shaped VGG16 ``features`` state dict (0.weight ... 28.bias, 14.7M parameters) on disk."""
    features = random_vgg16_features()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-features.pth"
    torch.save(features.state_dict(), path)
    return path, features


def images(seed: int = 0, shape=(2, 3, 32, 32)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    low = torch.rand(shape[0], shape[1], shape[2] // 4, shape[3] // 4, generator=generator) * 2 - 1
    return nn.functional.interpolate(low, size=shape[2:], mode="bilinear", align_corners=False)


def test_full_features_file_gives_the_five_lpips_taps_with_imagenet_normalisation(vgg_file):
    path, reference = vgg_file
    network = load_vgg16_features(path)
    assert not network.training and all(not p.requires_grad for p in network.parameters())
    state = reference.state_dict()
    assert network.features.state_dict().keys() == state.keys()  # every conv of relu1_2 ... relu5_3
    x = images()
    taps = network(x)
    assert [tuple(t.shape) for t in taps] == [
        (2, 64, 32, 32),
        (2, 128, 16, 16),
        (2, 256, 8, 8),
        (2, 512, 4, 4),
        (2, 512, 2, 2),
    ]
    # By hand: [-1, 1] -> [0, 1] -> ImageNet mean/std, then torchvision's layers up to each ReLU.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std
    expected = []
    with torch.no_grad():
        for index, layer in enumerate(reference):
            h = layer(h)
            if index in VGG16_TAPS:
                expected.append(h.clone())
            if index == VGG16_TAPS[-1]:
                break
    for ours, theirs in zip(taps, expected):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    # Grey images are repeated to three channels.
    grey = images(1, (1, 1, 16, 16))
    torch.testing.assert_close(network(grey)[0], network(grey.expand(-1, 3, -1, -1))[0])


def test_perceptual_loss_with_vgg_zero_for_identical_and_differentiable(vgg_file):
    network = load_vgg16_features(vgg_file[0])
    loss = PerceptualLoss(network)
    x = images()
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
    value = loss(noisy, x)
    assert 0 < value.item() <= 4 * len(VGG16_TAPS)
    value.backward()
    assert torch.isfinite(noisy.grad).all() and noisy.grad.abs().sum() > 0
    criterion = TokenizerLoss(3, perceptual_weight=1.0, perceptual_network=network)
    _, logs = criterion.generator_loss(x, noisy.detach(), torch.tensor(0.0), 0, None)
    assert logs["perceptual"].item() == pytest.approx(value.item(), rel=1e-5)
    with pytest.raises(ShapeError, match="16x16"):
        network(images(2, (1, 3, 8, 8)))
    with pytest.raises(ShapeError):
        network(torch.zeros(1, 2, 32, 32))


def test_whole_model_and_safetensors_files_load_the_same_weights(vgg_file, tmp_path):
    path, reference = vgg_file
    state = reference.state_dict()
    # A torchvision vgg16() state dict: features.* plus classifier.* (ignored; tiny stand-ins here).
    whole = {f"features.{k}": v for k, v in state.items()}
    whole.update({"classifier.0.weight": torch.zeros(2, 2), "classifier.6.bias": torch.zeros(2)})
    torch.save(whole, tmp_path / "vgg16-397923af.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "features.safetensors"))
    x = images()
    expected = load_vgg16_features(path)(x)
    for name in ("vgg16-397923af.pth", "features.safetensors"):
        for ours, theirs in zip(load_vgg16_features(tmp_path / name)(x), expected):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_truncated_network_needs_only_its_layers(vgg_file, tmp_path):
    state = vgg_file[1].state_dict()
    first_two = {k: v for k, v in state.items() if int(k.split(".")[0]) <= VGG16_TAPS[1]}
    torch.save(first_two, tmp_path / "short.pth")
    network = load_vgg16_features(tmp_path / "short.pth", num_taps=2)
    assert [t.shape[1] for t in network(images(0, (1, 3, 8, 8)))] == [64, 128]
    with pytest.raises(CheckpointError, match=r"missing 10\.weight"):
        load_vgg16_features(tmp_path / "short.pth")
    with pytest.raises(ConfigError):
        load_vgg16_features(tmp_path / "short.pth", num_taps=6)


def _one_line(error: pytest.ExceptionInfo, path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_bad_files_give_one_line_errors_naming_the_file(vgg_file, tmp_path):
    state = vgg_file[1].state_dict()
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(missing)
    assert "does not exist" in _one_line(error, missing)

    not_a_dict = tmp_path / "list.pth"
    torch.save([state["0.weight"]], not_a_dict)
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(not_a_dict)
    assert "holds a list, not a torchvision VGG16 state dict" in _one_line(error, not_a_dict)

    pickled_module = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled_module)  # a pickled object: weights_only=True refuses it
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(pickled_module)
    assert "weights_only=True" in _one_line(error, pickled_module)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not safetensors at all")
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(garbage)
    _one_line(error, garbage)

    resnet_like = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.bias": torch.zeros(10)}, resnet_like)
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(resnet_like)
    assert "missing 0.weight, 0.bias, 2.weight and 23 more" in _one_line(error, resnet_like)

    extra = tmp_path / "extra.pth"
    torch.save({**state, "lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, extra)
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(extra)
    assert "unexpected lin0.model.1.weight" in _one_line(error, extra)

    misshapen = tmp_path / "misshapen.pth"
    torch.save({**state, "5.weight": torch.zeros(128, 64, 5, 5)}, misshapen)
    with pytest.raises(CheckpointError) as error:
        load_vgg16_features(misshapen)
    assert "5.weight has shape [128, 64, 5, 5], expected [128, 64, 3, 3]" in _one_line(error, misshapen)
