"""Training objectives shared by every tokenizer, one module per family, all re-exported here.

Media tensors follow the package contract: audio ``[B, C, S]`` (``dims=1``), images ``[B, C, H, W]``
(``dims=2``), video ``[B, C, T, H, W]`` (``dims=3``), all float in ``[-1, 1]``.

- :mod:`~vqgen.tokenizers.losses.reconstruction`: L1 / L2, and ``1 - MS-SSIM`` for images and video frames.
- :mod:`~vqgen.tokenizers.losses.perceptual`: :class:`PerceptualLoss` on a frozen feature network, and
  :func:`load_vgg16_features` to build torchvision's VGG16 trunk from a user's local weights file.
- :mod:`~vqgen.tokenizers.losses.spectral`: audio multi-resolution STFT and multi-scale mel losses.
- :mod:`~vqgen.tokenizers.losses.harmonic`: :class:`HarmonicLoss`, the log amplitudes of a note's partials.
- :mod:`~vqgen.tokenizers.losses.discriminators`: the PatchGAN and EnCodec's multi-scale STFT
  discriminator, both returning logits and hidden features (:class:`DiscriminatorOutput`).
- :mod:`~vqgen.tokenizers.losses.adversarial`: hinge losses, VQGAN's adaptive weight, feature matching.
- :mod:`~vqgen.tokenizers.losses.objective`: :class:`TokenizerLoss`, everything above in one objective.
"""

from vqgen.tokenizers.losses.adversarial import (
    adaptive_gan_weight,
    adversarial_discriminator_loss,
    adversarial_generator_loss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from vqgen.tokenizers.losses.discriminators import (
    DISCRIMINATOR_KINDS,
    DiscriminatorOutput,
    MultiScaleSTFTDiscriminator,
    PatchDiscriminator,
    STFTDiscriminator,
    build_discriminator,
    stft_sizes,
)
from vqgen.tokenizers.losses.harmonic import HarmonicLoss
from vqgen.tokenizers.losses.objective import TokenizerLoss
from vqgen.tokenizers.losses.perceptual import (
    VGG16_TAPS,
    FeatureNetwork,
    PerceptualLoss,
    VGG16Features,
    load_vgg16_features,
)
from vqgen.tokenizers.losses.reconstruction import RECONSTRUCTION_KINDS, ms_ssim_loss, reconstruction_loss
from vqgen.tokenizers.losses.spectral import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    SpectralLoss,
    floored_log,
    stft_magnitude,
)

__all__ = [
    "DISCRIMINATOR_KINDS",
    "RECONSTRUCTION_KINDS",
    "VGG16_TAPS",
    "DiscriminatorOutput",
    "FeatureNetwork",
    "HarmonicLoss",
    "MultiResolutionSTFTLoss",
    "MultiScaleMelLoss",
    "MultiScaleSTFTDiscriminator",
    "PatchDiscriminator",
    "PerceptualLoss",
    "STFTDiscriminator",
    "SpectralLoss",
    "TokenizerLoss",
    "VGG16Features",
    "adaptive_gan_weight",
    "adversarial_discriminator_loss",
    "adversarial_generator_loss",
    "build_discriminator",
    "feature_matching_loss",
    "floored_log",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "load_vgg16_features",
    "ms_ssim_loss",
    "reconstruction_loss",
    "stft_magnitude",
    "stft_sizes",
]
