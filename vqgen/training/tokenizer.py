"""Tokenizer training for every medium (reconstruction + quantizer + optional GAN) on the shared loop body."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

from vqgen.data.batching import collate
from vqgen.errors import ConfigError
from vqgen.media import item_medium
from vqgen.training.common import TrainingOptions, lr_lambda
from vqgen.training.loop import Objective, StepOutput, Trainables, dataset_batches, run_training


@dataclass
class TokenizerLossOptions:
    """Loss settings (see ``vqgen.tokenizers.losses.TokenizerLoss``)."""

    reconstruction: str = "l1"
    # Weight of the sample-wise term. Audio codecs trained on spectra mostly set it low (EnCodec 0.1, DAC 0):
    # a waveform L1 whose phase cannot be matched pulls the output towards silence.
    reconstruction_weight: float = 1.0
    quantizer_weight: float = 1.0
    discriminator_weight: float = 0.0
    discriminator_start: int = 2000
    discriminator_learning_rate: float | None = None
    # Audio only: weight of the multi-resolution STFT + multi-scale mel loss (0 = off).
    spectral_weight: float = 0.0
    # Audio only: weight of the log-amplitude L1 of the target's harmonics at its tracked pitch (0 = off;
    # vqgen.tokenizers.losses.harmonic: what the timbre of pitched notes needs).
    harmonic_weight: float = 0.0
    # Images and video frames: weight of 1 - MS-SSIM (11-px window; fewer scales for images under 176 px).
    ms_ssim_weight: float = 0.0
    # Images and video frames: weight of the distance between unit-normalised VGG16 relu1_2 ... relu5_3
    # features (LPIPS without its learned channel weights; taming uses 1.0). Needs perceptual_network.
    perceptual_weight: float = 0.0
    # A local torchvision VGG16 state dict (vgg16-397923af.pth style, the whole model or its `features`;
    # .pth or .safetensors). Nothing is downloaded. Empty: none. (A str default, so that the CLI flag
    # --perceptual-network takes a path.)
    perceptual_network: str = ""
    # L1 between the discriminator's hidden features of real and reconstructed media (MelGAN / HiFi-GAN /
    # EnCodec), from discriminator_start on, with this fixed weight (not the adaptive one). Positive builds
    # and trains the discriminator even when discriminator_weight is 0.
    feature_matching_weight: float = 0.0
    # "auto" (multi-scale STFT for audio, PatchGAN for images and video), "patch" or "stft" (audio only).
    discriminator: str = "auto"


def loss_options_for(tokenizer, **given) -> TokenizerLossOptions:
    """The loss options to train ``tokenizer`` with: ``given`` fields (None = unset), else its medium's defaults
    (``Medium.loss_defaults``: audio turns the spectral loss on, and the sample-wise one off for codecs that do
    not keep the phase), else :class:`TokenizerLossOptions`'s. What ``vqgen train-tokenizer`` uses."""
    from vqgen.media import medium_of

    defaults = medium_of(tokenizer).loss_defaults(tokenizer)
    chosen = {name: value for name, value in given.items() if value is not None}
    return TokenizerLossOptions(**{**defaults, **chosen})


def load_perceptual_network(loss_options: TokenizerLossOptions, dims: int) -> torch.nn.Module | None:
    """The frozen VGG16 trunk from ``loss_options.perceptual_network`` (None when no file is named).

    A file without a positive ``perceptual_weight``, or with audio (``dims=1``), is a :class:`ConfigError`.
    """
    path = loss_options.perceptual_network
    if not path:
        return None
    if loss_options.perceptual_weight <= 0:
        raise ConfigError(
            f"perceptual_network '{path}' is given but perceptual_weight is {loss_options.perceptual_weight}: "
            "set --perceptual-weight (taming uses 1.0)"
        )
    if dims == 1:
        raise ConfigError(f"perceptual_network '{path}' is an image network (VGG16); it cannot judge audio")
    from vqgen.tokenizers.losses import load_vgg16_features

    return load_vgg16_features(path)


def train_tokenizer(
    tokenizer: torch.nn.Module,
    train_dataset,
    options: TrainingOptions,
    loss_options: TokenizerLossOptions | None = None,
    eval_dataset=None,
    save_preview=None,
    decoder_only: bool = False,
) -> torch.nn.Module:
    """Train ``tokenizer`` on ``train_dataset`` and ``save_pretrained`` it into ``options.output``.

    ``save_preview(originals, reconstructions, path)`` writes a picture of held-out reconstructions at each
    evaluation (a reconstruction grid for images). ``decoder_only`` fine-tunes the decoder of a trained
    tokenizer and leaves its encoder and quantizer (weights, codebook, statistics) exactly as they are: every
    input keeps its codes, so priors and shards made with the tokenizer stay valid (the decoder fine-tuning
    stage of MaskGIT and LlamaGen, typically with the adversarial loss on). Returns the unwrapped, trained
    tokenizer (EMA weights when ``options.ema_decay`` > 0).
    """
    objective = TokenizerObjective(
        tokenizer, train_dataset, options, loss_options, eval_dataset, save_preview, decoder_only
    )
    return run_training(objective, options)


class TokenizerObjective(Objective):
    """Reconstruction + quantizer (+ adversarial) loss of a tokenizer; the discriminator, when
    ``loss_options.discriminator_weight`` or ``feature_matching_weight`` > 0, trains on its own optimizer
    from ``discriminator_start`` on.
    Evaluation: PSNR and code usage on a fixed held-out batch, and ``save_preview`` pictures."""

    description = "train tokenizer"
    throughput_name = "items_per_s"
    progress_keys = ("total", "usage")

    def __init__(
        self,
        tokenizer: torch.nn.Module,
        train_dataset,
        options: TrainingOptions,
        loss_options: TokenizerLossOptions | None = None,
        eval_dataset=None,
        save_preview=None,
        decoder_only: bool = False,
    ):
        self.tokenizer, self.train_dataset, self.options = tokenizer, train_dataset, options
        self.loss_options = loss_options or TokenizerLossOptions()
        self.eval_dataset, self.save_preview = eval_dataset, save_preview
        self.decoder_only = decoder_only

    def config(self) -> dict:
        """The loss settings, the tokenizer's config and whether only the decoder trains."""
        return {
            "loss": self.loss_options.__dict__,
            "tokenizer": dict(self.tokenizer.config),
            "decoder_only": self.decoder_only,
        }

    def frozen_parts(self, tokenizer: torch.nn.Module) -> list[torch.nn.Module]:
        """What ``decoder_only`` freezes: the encoder and the quantizer (none otherwise)."""
        return [tokenizer.encoder, tokenizer.quantizer] if self.decoder_only else []

    def train_mode(self, model: torch.nn.Module) -> None:
        """Training mode, except the frozen parts: a quantizer in training mode would move its EMA codebook
        and restart dead codes even without gradients."""
        model.train()
        for part in self.frozen_parts(self.unwrapped):
            part.eval()

    def setup(self, accelerator: Accelerator) -> Trainables:
        """The loss (with its discriminator), AdamW for tokenizer and discriminator, all prepared."""
        from vqgen.tokenizers.losses import TokenizerLoss

        loss_options, options = self.loss_options, self.options
        self.accelerator = accelerator
        item = self.train_dataset[0]
        self.key = item_medium(item).item_key
        sample = item[self.key]
        self.criterion = TokenizerLoss(
            in_channels=sample.shape[0],
            dims=sample.dim() - 1,
            reconstruction=loss_options.reconstruction,
            reconstruction_weight=loss_options.reconstruction_weight,
            quantizer_weight=loss_options.quantizer_weight,
            perceptual_weight=loss_options.perceptual_weight,
            perceptual_network=load_perceptual_network(loss_options, dims=sample.dim() - 1),
            discriminator_weight=loss_options.discriminator_weight,
            discriminator_start=loss_options.discriminator_start,
            spectral_weight=loss_options.spectral_weight,
            sample_rate=int(getattr(self.tokenizer.config, "sample_rate", 16000)),
            ms_ssim_weight=loss_options.ms_ssim_weight,
            feature_matching_weight=loss_options.feature_matching_weight,
            discriminator=loss_options.discriminator,
            harmonic_weight=loss_options.harmonic_weight,
        ).to(accelerator.device)
        for part in self.frozen_parts(self.tokenizer):
            part.requires_grad_(False)
        optimizer = torch.optim.AdamW(
            [p for p in self.tokenizer.parameters() if p.requires_grad],
            lr=options.learning_rate,
            betas=(0.5, 0.9),
            weight_decay=options.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(options))
        if self.criterion.discriminator is None:
            self.model, optimizer, scheduler = accelerator.prepare(self.tokenizer, optimizer, scheduler)
            d_optimizer = None
        else:
            d_optimizer = torch.optim.AdamW(
                self.criterion.discriminator.parameters(),
                lr=loss_options.discriminator_learning_rate or options.learning_rate,
                betas=(0.5, 0.9),
            )
            self.model, optimizer, scheduler, self.criterion.discriminator, d_optimizer = accelerator.prepare(
                self.tokenizer, optimizer, scheduler, self.criterion.discriminator, d_optimizer
            )
        self.unwrapped = accelerator.unwrap_model(self.model)
        return Trainables(self.model, optimizer, scheduler, d_optimizer)

    def start(self, accelerator: Accelerator, step: int) -> Iterator[dict]:
        """The dataset's scheduled batches from ``step`` on; then the fixed held-out batch (<= 32 items)."""
        batches = dataset_batches(self.train_dataset, self.options, accelerator, step)
        held_out = self.eval_dataset or self.train_dataset
        items = [held_out[i] for i in range(min(32, len(held_out)))]
        self.eval_batch = collate(items)[self.key].to(accelerator.device)
        return batches

    def inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """The media tensor: NaN/inf pixels or samples skip the batch."""
        return (batch[self.key],)

    def loss(self, batch: dict, step: int) -> StepOutput:
        """The generator loss (reconstruction, quantizer, adversarial once started), usage, perplexity."""
        x = batch[self.key]
        out = self.model(x)
        g_loss, logs = self.criterion.generator_loss(
            x, out.reconstruction, out.losses["quantizer"], step, self.unwrapped.last_layer_weight
        )
        logs = {
            **logs,
            "usage": out.losses["usage"].detach(),
            "perplexity": out.losses["perplexity"].detach(),
        }
        return StepOutput(g_loss, logs, items=x.shape[0], extras=(x, out.reconstruction))

    def auxiliary_loss(self, output: StepOutput, step: int) -> tuple[torch.Tensor, dict] | None:
        """The discriminator's loss on the micro-batch and its reconstruction, once it has started."""
        if not self.criterion.discriminator_active(step):
            return None
        x, reconstruction = output.extras
        return self.criterion.discriminator_loss(x, reconstruction, step)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """PSNR and code usage on the fixed held-out batch; the main process writes the preview."""
        from vqgen.evaluation.metrics import psnr

        batch = self.eval_batch
        out = self.unwrapped(batch)
        reconstruction = out.reconstruction.float().clamp(-1, 1)
        if self.accelerator.is_main_process and self.save_preview is not None:
            path = Path(self.options.output) / "samples" / f"step-{step:08d}.png"
            self.save_preview(batch, reconstruction.cpu(), path)
        return {
            "psnr": float(psnr(reconstruction, batch.float()).mean()),
            "usage": float(out.losses["usage"]),
        }
