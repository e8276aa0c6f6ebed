"""Store a trained pipeline in fp16 (a shipped default) and write its model card.

    python scripts/export_pipeline.py --pipeline runs/default/prior/pipeline --output vqgen/pretrained/image-mnist \
        --card runs/default/MODEL_CARD.md
"""

import argparse
import shutil
from pathlib import Path

import torch

from vqgen.integrity import read_manifest
from vqgen.loading import load_tokenizer
from vqgen.media.base import number_list
from vqgen.pipelines.loading import load_pipeline
from vqgen.priors.sampling_config import GUIDANCE_SCHEDULES, SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--card",
        default=None,
        help="a Markdown model card to copy in as README.md (default: keep the output's)",
    )
    parser.add_argument(
        "--default-guidance-scale",
        type=float,
        default=None,
        help="store this guidance as the pipeline's default (chosen on a held-out draw)",
    )
    parser.add_argument("--default-temperature", type=float, default=None, help="store as the default")
    parser.add_argument("--default-top-k", type=int, default=None, help="store as the default")
    parser.add_argument("--default-top-p", type=float, default=None, help="store as the default")
    parser.add_argument(
        "--default-guidance-schedule", choices=GUIDANCE_SCHEDULES, default=None, help="store as the default"
    )
    parser.add_argument(
        "--default-guidance-level-weights", type=number_list, default=None, help="store as the default"
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="replace the pipeline's tokenizer by this one: a --decoder-only fine-tune of it (same codes)",
    )
    parser.add_argument("--script", default=None, help="the script that trained it (recorded as provenance)")
    args = parser.parse_args()
    pipe = load_pipeline(args.pipeline)
    if args.tokenizer is not None:
        pipe.set_tokenizer(load_tokenizer(args.tokenizer))
    if args.default_guidance_scale is not None:
        pipe.set_default_guidance_scale(args.default_guidance_scale)
    defaults = {
        "temperature": args.default_temperature,
        "top_k": args.default_top_k,
        "top_p": args.default_top_p,
        "guidance_schedule": args.default_guidance_schedule,
        "guidance_level_weights": args.default_guidance_level_weights,
    }
    if any(value is not None for value in defaults.values()):
        pipe.set_default_sampling(SamplingConfig.from_arguments(None, **defaults))
    output = Path(args.output)
    card = Path(args.card).read_text() if args.card else None
    if card is None and (output / "README.md").is_file():
        card = (output / "README.md").read_text()  # the model card outlives the weights it describes
    shutil.rmtree(output, ignore_errors=True)
    # What trained the weights (e.g. fit-background's record) comes along.
    provenance = (read_manifest(args.pipeline) or {}).get("provenance", {})
    provenance.update({"exported_from": args.pipeline, "dtype": "float16", "script": args.script})
    if args.tokenizer is not None:
        provenance["tokenizer_from"] = args.tokenizer
    pipe.to(torch.float16).save_pretrained(str(output), provenance=provenance)
    if card is not None:
        (output / "README.md").write_text(card)
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    print(f"wrote {output} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
