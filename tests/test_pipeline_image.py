"""ImagePipeline: output types, seeding, save/load like diffusers, and refusal of broken or mismatched folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import make_prior, make_tokenizer

from vqgen import load_pipeline
from vqgen.errors import CheckpointError, ConfigError, MismatchError
from vqgen.pipelines import ImagePipeline
from vqgen.pipelines.base import item_generators


@pytest.fixture
def pipe():
    return ImagePipeline(make_tokenizer(), make_prior())


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_output_types(pipe):
    pt = pipe(num_samples=3, class_labels=[0, 1, 2], generator=seeded(), output_type="pt").images
    assert pt.shape == (3, 1, 8, 8) and pt.dtype == torch.float32 and pt.abs().max() <= 1
    array = pipe(num_samples=3, class_labels=[0, 1, 2], generator=seeded(), output_type="np").images
    assert array.shape == (3, 8, 8, 1) and array.dtype == np.uint8
    np.testing.assert_array_equal(array[..., 0], np.round((pt[:, 0].numpy() + 1) * 127.5).astype(np.uint8))
    pil = pipe(num_samples=3, class_labels=[0, 1, 2], generator=seeded(), output_type="pil").images
    assert len(pil) == 3 and isinstance(pil[0], PIL.Image.Image) and pil[0].size == (8, 8)
    np.testing.assert_array_equal(np.asarray(pil[1]), array[1, ..., 0])


def test_same_seed_same_images_and_batches_do_not_change_results(pipe):
    a = pipe(num_samples=5, class_labels=1, guidance_scale=2.0, generator=seeded(3), output_type="pt").images
    b = pipe(num_samples=5, class_labels=1, guidance_scale=2.0, generator=seeded(3), output_type="pt").images
    c = pipe(num_samples=5, class_labels=1, guidance_scale=2.0, generator=seeded(4), output_type="pt").images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_images_are_the_decoded_prior_samples(pipe):
    # One generator seeds one generator per item (diffusers' list-of-generators form).
    generators = item_generators(seeded(7), 4)
    codes = pipe.prior.sample(4, class_labels=[2, 2, 0, 1], top_k=5, generator=generators)
    expected = pipe.tokenizer.decode(codes).clamp(-1, 1)
    images = pipe(
        num_samples=4,
        class_labels=[2, 2, 0, 1],
        guidance_scale=1.0,
        top_k=5,
        generator=seeded(7),
        output_type="pt",
    ).images
    torch.testing.assert_close(images, expected)
    # With labels and no guidance_scale, the default guidance (3) applies; without labels, none.
    default = pipe(num_samples=2, class_labels=1, generator=seeded(1), output_type="pt").images
    three = pipe(
        num_samples=2, class_labels=1, guidance_scale=3.0, generator=seeded(1), output_type="pt"
    ).images
    torch.testing.assert_close(default, three, rtol=0, atol=0)


def test_save_and_load_give_identical_samples(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["_class_name"] == "ImagePipeline"
    assert index["tokenizer"][1] == "ImageTokenizer" and index["prior"][1] == "CodePrior"
    assert (tmp_path / "p" / "prior" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = ImagePipeline.from_pretrained(tmp_path / "p")
    again = load_pipeline(tmp_path / "p")
    assert type(again) is ImagePipeline
    kwargs = dict(
        num_samples=4, class_labels=[0, 1, 2, 0], guidance_scale=3.0, generator=None, output_type="pt"
    )
    for other in (loaded, again):
        torch.testing.assert_close(
            pipe(**{**kwargs, "generator": seeded()}).images,
            other(**{**kwargs, "generator": seeded()}).images,
            rtol=0,
            atol=0,
        )


def test_broken_pipeline_folders_are_refused(pipe, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ImagePipeline.from_pretrained(tmp_path / "missing")
    pipe.save_pretrained(tmp_path / "p")
    broken = tmp_path / "no-prior"
    shutil.copytree(tmp_path / "p", broken)
    shutil.rmtree(broken / "prior")
    with pytest.raises(CheckpointError, match="missing its prior folder"):
        ImagePipeline.from_pretrained(broken)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tmp_path / "p", corrupt)
    (corrupt / "tokenizer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="changed after saving"):
        ImagePipeline.from_pretrained(corrupt)
    (corrupt / "vqgen_manifest.json").unlink()  # without checksums the weight file itself is refused
    with pytest.raises(CheckpointError, match="cannot load pipeline"):
        ImagePipeline.from_pretrained(corrupt)
    foreign = tmp_path / "foreign"
    shutil.copytree(tmp_path / "p", foreign)
    index = json.loads((foreign / "model_index.json").read_text())
    index["prior"] = ["os", "system"]
    (foreign / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="must name a vqgen 'prior'"):
        ImagePipeline.from_pretrained(foreign)
    with pytest.raises(CheckpointError, match="no model_index.json"):
        load_pipeline(tmp_path / "p" / "prior")


def test_mismatched_components_are_refused():
    with pytest.raises(MismatchError, match="codes"):
        ImagePipeline(make_tokenizer(codebook_size=16), make_prior(codebook_size=32))
    with pytest.raises(MismatchError, match="grid"):
        ImagePipeline(make_tokenizer(), make_prior(grid=(2, 4, 4)))


def test_bad_call_arguments(pipe):
    with pytest.raises(ConfigError, match="num_samples"):
        pipe(num_samples=0)
    with pytest.raises(ConfigError, match="output_type"):
        pipe(num_samples=1, output_type="jpeg")
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        pipe(num_samples=1, class_labels=[7])
    with pytest.raises(ConfigError, match="top_p"):
        pipe(num_samples=1, top_p=0.0)
    with pytest.raises(ConfigError, match="temperature"):
        pipe(num_samples=1, temperature=-1.0)


def test_an_items_sample_does_not_depend_on_its_batch(pipe):
    """Per-item generators: the split into batches (or processes) never changes what a seed draws."""
    kwargs = dict(num_samples=5, class_labels=[0, 1, 2, 0, 1], output_type="pt")
    whole = pipe(**kwargs, generator=seeded(11), batch_size=5).images
    pieces = pipe(**kwargs, generator=seeded(11), batch_size=2).images
    torch.testing.assert_close(whole, pieces, rtol=0, atol=1e-6)
    listed = pipe(**kwargs, generator=item_generators(seeded(11), 5)).images
    torch.testing.assert_close(whole, listed, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="a list of 5"):
        pipe(**kwargs, generator=[seeded(1)] * 2)


def test_set_tokenizer_takes_a_decoder_fine_tune_and_refuses_other_codes(pipe, tmp_path):
    tuned = make_tokenizer()
    tuned.load_state_dict(pipe.tokenizer.state_dict())
    with torch.no_grad():
        tuned.decoder.conv_out.bias.add_(0.5)
    before = pipe(num_samples=2, class_labels=[0, 1], generator=seeded(), output_type="pt").images
    pipe.set_tokenizer(tuned)
    after = pipe(num_samples=2, class_labels=[0, 1], generator=seeded(), output_type="pt").images
    assert pipe.tokenizer is tuned and not torch.equal(before, after)
    pipe.save_pretrained(tmp_path / "p")
    reloaded = load_pipeline(tmp_path / "p")
    assert torch.equal(reloaded.tokenizer.decoder.conv_out.bias, tuned.decoder.conv_out.bias)

    other = make_tokenizer()
    other.load_state_dict(pipe.tokenizer.state_dict())
    with torch.no_grad():
        other.encoder.conv_in.weight.mul_(1.01)
    with pytest.raises(MismatchError, match=r"encoder\.conv_in\.weight differs .* --decoder-only"):
        pipe.set_tokenizer(other)
    other.load_state_dict(pipe.tokenizer.state_dict())
    other.quantizer.codebook.data[0] += 1  # the codebook is part of what fixes the codes
    with pytest.raises(MismatchError, match="quantizer"):
        pipe.set_tokenizer(other)
