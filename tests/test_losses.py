"""Losses checked against their formulas on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.losses import (
    PatchDiscriminator,
    PerceptualLoss,
    TokenizerLoss,
    adaptive_gan_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    reconstruction_loss,
)


def test_reconstruction_loss_l1_l2_and_unknown_kind():
    target = torch.zeros(1, 1, 2, 2)
    recon = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]]])
    assert reconstruction_loss(recon, target, "l1").item() == pytest.approx((1 + 2 + 0 + 3) / 4)
    assert reconstruction_loss(recon, target, "l2").item() == pytest.approx((1 + 4 + 0 + 9) / 4)
    with pytest.raises(ConfigError, match="'huber'"):
        reconstruction_loss(recon, target, "huber")
    with pytest.raises(ShapeError):
        reconstruction_loss(recon, torch.zeros(1, 1, 2, 3))


def test_hinge_losses_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + fake) = 0, 1, 2
    expected = 0.5 * (2.5 / 3 + 3.0 / 3)
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(expected)
    assert hinge_generator_loss(fake).item() == pytest.approx(1.0 / 3)


def _linear_decoder():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2, bias=False)
    z = torch.randn(4, 3)
    target = torch.randn(4, 2)
    coeff = torch.randn(4, 2)
    return layer, z, target, coeff


def test_adaptive_gan_weight_matches_hand_computed_grad_norms():
    layer, z, target, coeff = _linear_decoder()
    out = layer(z)
    rec = (out - target).pow(2).mean()
    gan = (coeff * out).sum()
    # d rec / d W = 2 / N * (out - t)^T z ; d gan / d W = coeff^T z   (W is [out, in])
    with torch.no_grad():
        grad_rec = 2.0 / out.numel() * (out - target).T @ z
        grad_gan = coeff.T @ z
    expected = grad_rec.norm() / (grad_gan.norm() + 1e-4)
    weight = adaptive_gan_weight(rec, gan, layer.weight)
    assert not weight.requires_grad
    assert weight.item() == pytest.approx(expected.item(), rel=1e-5)
    # The graph is kept for the caller's backward.
    (rec + weight * gan).backward()
    assert layer.weight.grad is not None


def test_adaptive_gan_weight_clamps_and_zeroes_non_finite():
    layer, z, target, _ = _linear_decoder()
    out = layer(z)
    rec = (out - target).pow(2).mean()
    tiny_gan = 1e-12 * out.sum()
    assert adaptive_gan_weight(rec, tiny_gan, layer.weight, max_weight=7.0).item() == 7.0
    inf_gan = float("inf") * out.sum()
    assert adaptive_gan_weight(rec, inf_gan, layer.weight).item() == 0.0
    with pytest.raises(ConfigError):
        adaptive_gan_weight(rec.detach(), tiny_gan, layer.weight)


@pytest.mark.parametrize(
    ("dims", "shape", "num_layers", "patches"),
    [
        (2, (2, 1, 28, 28), 3, (3, 3)),
        (2, (1, 3, 16, 16), 3, (2, 2)),
        (2, (1, 3, 16, 16), 5, (1, 2)),  # smaller than 2**5: padded, never a lone patch
        (3, (1, 3, 8, 32, 32), 3, (1, 4, 4)),
        (3, (1, 3, 16, 16, 16), 3, (2, 2, 2)),
        (1, (1, 1, 16000), 3, (250,)),
        (1, (2, 1, 16), 3, (2,)),
        (3, (1, 2, 1, 2, 3), 2, (1, 1, 2)),
    ],
)
def test_patch_discriminator_output_shapes(dims, shape, num_layers, patches):
    disc = PatchDiscriminator(shape[1], base_channels=4, num_layers=num_layers, dims=dims)
    logits = disc(torch.rand(shape) * 2 - 1)
    assert logits.shape == (shape[0], 1, *patches)
    assert torch.isfinite(logits).all()


def test_patch_discriminator_init_and_errors():
    disc = PatchDiscriminator(3, base_channels=16, num_layers=3)
    weights = torch.cat([m.weight.flatten() for m in disc.modules() if isinstance(m, nn.Conv2d)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    with pytest.raises(ShapeError):
        disc(torch.zeros(1, 3, 16))
    with pytest.raises(ConfigError):
        PatchDiscriminator(3, dims=4)


class _TinyFeatures(nn.Module):
    """Two conv layers; returns both feature maps."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.a = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.dropout = nn.Dropout(0.5)  # would make the loss random if the network left eval mode

    def forward(self, x):
        fa = torch.relu(self.a(x))
        return [fa, self.dropout(self.b(fa))]


def test_perceptual_loss_zero_for_identical_positive_otherwise_and_frozen():
    torch.manual_seed(0)
    net = _TinyFeatures()
    loss = PerceptualLoss(net, layer_weights=[1.0, 0.5])
    loss.train()
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())

    x = torch.rand(2, 3, 12, 12) * 2 - 1
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    value = loss(y, x)
    assert value.item() > 0
    assert value.item() == pytest.approx(loss(y, x).item())  # deterministic: no dropout
    value.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0

    # A plain function works too, and the distance is <= 4 per layer (unit vectors).
    single = PerceptualLoss(lambda t: t)
    assert 0 < single(y.detach(), x).item() <= 4.0
    with pytest.raises(ShapeError):
        PerceptualLoss(net, layer_weights=[1.0])(y, x)


def _tiny_setup():
    torch.manual_seed(0)
    decoder = nn.Conv2d(2, 1, 3, padding=1)
    latent = torch.randn(2, 2, 16, 16)
    target = torch.rand(2, 1, 16, 16) * 2 - 1
    return decoder, latent, target


def test_tokenizer_loss_adversarial_term_starts_at_discriminator_start():
    decoder, latent, target = _tiny_setup()
    criterion = TokenizerLoss(
        1, discriminator_weight=0.5, discriminator_start=3, discriminator_channels=4, discriminator_layers=2
    )
    quantizer_loss = torch.tensor(0.25, requires_grad=True)

    recon = decoder(latent)
    total, logs = criterion.generator_loss(
        target, recon, quantizer_loss, step=2, last_layer_weight=decoder.weight
    )
    assert not criterion.discriminator_active(2)
    assert "generator_adv" not in logs and "adaptive_weight" not in logs
    rec = reconstruction_loss(recon, target)
    assert total.item() == pytest.approx(rec.item() + 0.25)
    assert logs["total"].item() == pytest.approx(total.item())
    d_loss, d_logs = criterion.discriminator_loss(target, recon, step=2)
    assert d_loss.item() == 0.0 and not d_loss.requires_grad and d_logs == {}

    recon = decoder(latent)
    total, logs = criterion.generator_loss(
        target, recon, quantizer_loss, step=3, last_layer_weight=decoder.weight
    )
    assert criterion.discriminator_active(3)
    adv = hinge_generator_loss(criterion.discriminator(recon))
    assert logs["generator_adv"].item() == pytest.approx(adv.item())
    expected_weight = adaptive_gan_weight(reconstruction_loss(recon, target), adv, decoder.weight)
    assert logs["adaptive_weight"].item() == pytest.approx(expected_weight.item(), rel=1e-4)
    expected = rec.item() + 0.25 + expected_weight.item() * 0.5 * adv.item()
    assert total.item() == pytest.approx(expected, rel=1e-5)

    # Generator backward reaches the decoder but leaves the discriminator untouched.
    total.backward()
    assert decoder.weight.grad is not None
    assert all(p.grad is None for p in criterion.discriminator.parameters())

    decoder.zero_grad()
    d_loss, d_logs = criterion.discriminator_loss(target, decoder(latent), step=3)
    assert d_loss.requires_grad and set(d_logs) == {"discriminator", "logits_real", "logits_fake"}
    d_loss.backward()
    assert decoder.weight.grad is None  # reconstruction was detached
    assert all(p.grad is not None for p in criterion.discriminator.parameters())


def test_tokenizer_loss_without_last_layer_or_autograd_uses_weight_one():
    decoder, latent, target = _tiny_setup()
    criterion = TokenizerLoss(1, discriminator_weight=1.0, discriminator_channels=4, discriminator_layers=2)
    q = torch.tensor(0.0)
    _, logs = criterion.generator_loss(target, decoder(latent), q, step=0, last_layer_weight=None)
    assert logs["adaptive_weight"].item() == 1.0
    with torch.no_grad():
        total, logs = criterion.generator_loss(
            target, decoder(latent), q, step=0, last_layer_weight=decoder.weight
        )
    assert logs["adaptive_weight"].item() == 1.0 and torch.isfinite(total)


def test_tokenizer_loss_perceptual_term_on_video_frames():
    torch.manual_seed(0)
    net = _TinyFeatures()  # an image network: video is scored frame by frame
    criterion = TokenizerLoss(
        3, dims=3, reconstruction="l2", quantizer_weight=2.0, perceptual_weight=0.1, perceptual_network=net
    )
    assert criterion.discriminator is None and not criterion.discriminator_active(10**6)
    target = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    recon = target + 0.1 * torch.randn_like(target)
    total, logs = criterion.generator_loss(target, recon, torch.tensor(0.5), step=0, last_layer_weight=None)
    assert set(logs) == {"reconstruction", "quantizer", "perceptual", "total"}

    def to_frames(video):
        return video.transpose(1, 2).flatten(0, 1)

    expected_perceptual = PerceptualLoss(net)(to_frames(recon), to_frames(target))
    assert logs["perceptual"].item() == pytest.approx(expected_perceptual.item(), rel=1e-6)
    assert logs["perceptual"].item() > 0
    expected = (recon - target).pow(2).mean() + 2.0 * 0.5 + 0.1 * expected_perceptual
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_tokenizer_loss_config_errors():
    with pytest.raises(ConfigError, match="perceptual_network"):
        TokenizerLoss(3, perceptual_weight=1.0)
    with pytest.raises(ConfigError, match="'l3'"):
        TokenizerLoss(3, reconstruction="l3")
    with pytest.raises(ConfigError):
        TokenizerLoss(3, discriminator_weight=-1.0)
    with pytest.raises(ConfigError):
        TokenizerLoss(3, quantizer_weight=math.nan)
