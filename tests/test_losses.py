"""Losses checked against their formulas on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vqgen.errors import ConfigError, ShapeError
from vqgen.evaluation.metrics import ms_ssim
from vqgen.tokenizers.losses import (
    DiscriminatorOutput,
    PatchDiscriminator,
    PerceptualLoss,
    TokenizerLoss,
    adaptive_gan_weight,
    feature_matching_loss,
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
    out = disc(torch.rand(shape) * 2 - 1)
    assert isinstance(out, DiscriminatorOutput) and len(out.logits) == 1 and len(out.features) == 1
    (logits,) = out.logits
    assert logits.shape == (shape[0], 1, *patches)
    assert torch.isfinite(logits).all()
    # One feature map per LeakyReLU: num_layers + 1, the widths of the conv stack, the batch kept.
    widths = [4 * min(2**i, 8) for i in range(num_layers)] + [4 * min(2**num_layers, 8)]
    assert [f.shape[:2] for f in out.features[0]] == [(shape[0], w) for w in widths]
    assert out.features[0][-1].shape[2:] == logits.shape[2:]


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
    adv = hinge_generator_loss(criterion.discriminator(recon).logits[0])
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


# --------------------------------------------------------------------------------------------------------
# Behaviour kept bit for bit, feature matching, MS-SSIM term
# --------------------------------------------------------------------------------------------------------

# TokenizerLoss values computed by the implementation before MS-SSIM, feature matching and the STFT
# discriminator were added (commit 7d925c2): with the new weights at 0 nothing may change.
GOLDEN = {
    "image": {
        "reconstruction": 0.6822576522827148,
        "quantizer": 0.25,
        "generator_adv": -0.099024698138237,
        "adaptive_weight": 2.4821701049804688,
        "total": 0.8093595504760742,
    },
    "image_d": {
        "discriminator": 0.9913902282714844,
        "logits_real": 0.11624418944120407,
        "logits_fake": 0.099024698138237,
    },
    "default": {"reconstruction": 0.6822576522827148, "quantizer": 0.25, "total": 0.9322576522827148},
    "video": {
        "reconstruction": 0.6241461634635925,
        "quantizer": 0.25,
        "generator_adv": 0.001570234540849924,
        "adaptive_weight": 0.8794093132019043,
        "total": 0.8748366236686707,
    },
    "video_d": {
        "discriminator": 0.9983969926834106,
        "logits_real": 0.0016358066350221634,
        "logits_fake": -0.0015702308155596256,
    },
}
SMALL_DISCRIMINATOR = dict(discriminator_start=0, discriminator_channels=4, discriminator_layers=2)


def _close(logs: dict, expected: dict) -> None:
    assert list(logs) == list(expected)  # the same entries, in the same order (log columns)
    for key, value in expected.items():
        # abs 1e-7: the video logits (~1e-3) are means of cancelling terms, and differ by ~1e-8 between CPU
        # kernels (AVX2, where the values were taken, vs AVX-512); any real change moves them far more
        assert logs[key].item() == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_tokenizer_loss_values_unchanged_with_new_weights_at_zero():
    torch.manual_seed(0)
    decoder = nn.Conv2d(2, 3, 3, padding=1)
    latent = torch.randn(2, 2, 16, 16)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    q = torch.tensor(0.25, requires_grad=True)
    criterion = TokenizerLoss(3, discriminator_weight=0.5, **SMALL_DISCRIMINATOR)
    recon = decoder(latent)
    _, logs = criterion.generator_loss(target, recon, q, step=0, last_layer_weight=decoder.weight)
    _close(logs, GOLDEN["image"])
    _close(criterion.discriminator_loss(target, recon, step=0)[1], GOLDEN["image_d"])
    defaults = TokenizerLoss(3)
    assert defaults.discriminator is None and defaults.perceptual is None
    _close(defaults.generator_loss(target, decoder(latent), q, 10**6, decoder.weight)[1], GOLDEN["default"])

    torch.manual_seed(1)
    decoder3 = nn.Conv3d(2, 3, 3, padding=1)
    latent3 = torch.randn(1, 2, 4, 16, 16)
    target3 = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    criterion = TokenizerLoss(3, dims=3, discriminator_weight=0.5, **SMALL_DISCRIMINATOR)
    _, logs = criterion.generator_loss(
        target3, decoder3(latent3), q, step=0, last_layer_weight=decoder3.weight
    )
    _close(logs, GOLDEN["video"])
    _close(criterion.discriminator_loss(target3, decoder3(latent3), 0)[1], GOLDEN["video_d"])


def test_feature_matching_loss_by_hand_and_real_side_detached():
    fake = [[torch.tensor([1.0, 2.0]), torch.tensor([[0.0, 4.0]])], [torch.tensor([3.0])]]
    real = [[torch.tensor([1.5, 1.0]), torch.tensor([[1.0, 1.0]])], [torch.tensor([1.0])]]
    real = [[r.requires_grad_(True) for r in layers] for layers in real]
    # sub-discriminator 1: layers (0.5 + 1) / 2 = 0.75 and (1 + 3) / 2 = 2 -> 1.375; sub-discriminator 2: 2
    value = feature_matching_loss(fake, real)
    assert value.item() == pytest.approx((1.375 + 2.0) / 2)
    assert not value.requires_grad  # nothing on the fake side needs grad, the real side is detached
    with pytest.raises(ShapeError):
        feature_matching_loss(fake, real[:1])
    with pytest.raises(ShapeError):
        feature_matching_loss([fake[0][:1]], [real[0]])


def test_tokenizer_loss_feature_matching_fixed_weight_after_start():
    decoder, latent, target = _tiny_setup()
    kwargs = dict(
        discriminator_weight=0.5, discriminator_start=3, discriminator_channels=4, discriminator_layers=2
    )
    criterion = TokenizerLoss(1, feature_matching_weight=2.0, **kwargs)
    plain = TokenizerLoss(1, **kwargs)
    plain.discriminator.load_state_dict(criterion.discriminator.state_dict())
    q = torch.tensor(0.25)

    _, logs = criterion.generator_loss(target, decoder(latent), q, step=2, last_layer_weight=decoder.weight)
    assert "feature_matching" not in logs

    recon = decoder(latent)
    total, logs = criterion.generator_loss(target, recon, q, step=3, last_layer_weight=decoder.weight)
    _, plain_logs = plain.generator_loss(target, decoder(latent), q, step=3, last_layer_weight=decoder.weight)
    # The adaptive weight and the hinge term are exactly those of the objective without feature matching.
    assert logs["adaptive_weight"].item() == plain_logs["adaptive_weight"].item()
    assert logs["generator_adv"].item() == plain_logs["generator_adv"].item()
    with torch.no_grad():
        expected_fm = feature_matching_loss(
            criterion.discriminator(recon).features, criterion.discriminator(target).features
        )
    assert logs["feature_matching"].item() == pytest.approx(expected_fm.item(), rel=1e-6)
    assert logs["feature_matching"].item() > 0
    expected = plain_logs["total"].item() + 2.0 * expected_fm.item()
    assert total.item() == pytest.approx(expected, rel=1e-6)
    total.backward()
    assert decoder.weight.grad is not None
    assert all(p.grad is None for p in criterion.discriminator.parameters())


def test_feature_matching_alone_builds_and_trains_the_discriminator():
    decoder, latent, target = _tiny_setup()
    criterion = TokenizerLoss(
        1, feature_matching_weight=1.0, reconstruction_weight=0.0, **SMALL_DISCRIMINATOR
    )
    assert criterion.discriminator is not None and criterion.discriminator_active(0)
    target.requires_grad_(True)
    total, logs = criterion.generator_loss(target, decoder(latent), torch.tensor(0.0), 0, decoder.weight)
    assert "generator_adv" not in logs and "adaptive_weight" not in logs and logs["feature_matching"] > 0
    total.backward()
    assert decoder.weight.grad.abs().sum() > 0  # feature matching alone moves the decoder
    assert target.grad is None or target.grad.abs().sum() == 0  # the real features are constants
    assert all(p.grad is None for p in criterion.discriminator.parameters())
    d_loss, d_logs = criterion.discriminator_loss(target.detach(), decoder(latent), step=0)
    d_loss.backward()
    assert set(d_logs) == {"discriminator", "logits_real", "logits_fake"}
    assert all(p.grad is not None for p in criterion.discriminator.parameters())


def test_tokenizer_loss_ms_ssim_term_images_video_and_autocast():
    generator = torch.Generator().manual_seed(0)
    target = torch.nn.functional.interpolate(
        torch.rand(2, 3, 8, 8, generator=generator) * 2 - 1, size=(32, 32)
    )
    recon = (target + 0.2 * torch.randn(target.shape, generator=generator)).requires_grad_(True)
    criterion = TokenizerLoss(3, ms_ssim_weight=0.5)
    total, logs = criterion.generator_loss(target, recon, torch.tensor(0.0), 0, None)
    expected = 1 - ms_ssim(recon.detach(), target).mean()
    assert 0 < logs["ms_ssim"].item() < 1
    assert logs["ms_ssim"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert total.item() == pytest.approx(
        (recon - target).abs().mean().item() + 0.5 * expected.item(), rel=1e-6
    )
    total.backward()
    assert torch.isfinite(recon.grad).all() and recon.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in float32 all the same
        _, autocast_logs = criterion.generator_loss(target, recon, torch.tensor(0.0), 0, None)
    assert autocast_logs["ms_ssim"].dtype == torch.float32
    assert autocast_logs["ms_ssim"].item() == pytest.approx(expected.item(), rel=1e-6)

    video, video_recon = (
        target.view(1, 2, 3, 32, 32).transpose(1, 2),
        recon.detach().view(1, 2, 3, 32, 32).transpose(1, 2),
    )
    _, logs = TokenizerLoss(3, dims=3, ms_ssim_weight=1.0).generator_loss(
        video, video_recon, torch.tensor(0.0), 0, None
    )
    assert logs["ms_ssim"].item() == pytest.approx(expected.item(), rel=1e-5)  # the same frames


def test_tokenizer_loss_new_option_errors():
    with pytest.raises(ConfigError, match="ms_ssim_weight"):
        TokenizerLoss(1, dims=1, ms_ssim_weight=1.0)
    with pytest.raises(ConfigError, match="feature_matching_weight"):
        TokenizerLoss(3, feature_matching_weight=-1.0)
    with pytest.raises(ConfigError, match="'stft'"):
        TokenizerLoss(3, discriminator="stft", discriminator_weight=1.0)
    with pytest.raises(ConfigError, match="'multi'"):
        TokenizerLoss(3, discriminator="multi")
