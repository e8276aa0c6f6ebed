"""``vqgen info``: versions, and what a saved model or pipeline folder holds (checksums verified)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="versions, and the config of a saved model folder")
    p.add_argument("path", nargs="?")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    import vqgen

    print(
        f"vqgen {vqgen.__version__}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
    )
    if not args.path:
        return
    if (Path(args.path) / "model_index.json").is_file():
        from vqgen.integrity import describe_pipeline

        report = describe_pipeline(args.path)  # verifies the checksums: a tampered folder is an error
        print(f"{report['pipeline']} in {args.path}: checksums {report['checksums']}")
        for name, part in report["components"].items():
            print(f"  {name}: {part['class']}, {part['weight_bytes'] / 1e6:.2f} MB of weights")
        fields = report.get("condition_fields")
        conditions = (
            "condition fields "
            + ", ".join(f"{name} ({count} values)" for name, count in sorted(fields.items()))
            if fields
            else f"{report['num_classes']} classes"
        )
        print(
            f"  code grid {report['code_grid']}, codebook {report['codebook_size']}, layout {report['layout']}, "
            f"{conditions}"
        )
        if report.get("condition_names"):
            for name, values in report["condition_names"].items():
                print(f"  {name}: {', '.join(values[:20])}{', ...' if len(values) > 20 else ''}")
        draws = report.get("condition_draws")
        if draws:
            print(
                f"  draws {', '.join(draws['fields'])} when a call leaves it out, from "
                f"{len(draws['table'])} value combinations of its training data"
            )
        print(f"  draws with {default_sampling_words(report)} (guidance with labels; a call may replace any)")
        print(json.dumps({"provenance": report["provenance"], "components": report["components"]}, indent=2))
    else:
        from vqgen.loading import read_config

        print(json.dumps(read_config(args.path), indent=2))


def default_sampling_words(report: dict) -> str:
    """``"temperature 0.8, top-k 100, guidance 5"``: what a labelled pipeline call draws with by default."""
    from vqgen.pipelines.base import sampling_from_dict, stored_guidance
    from vqgen.priors.sampling_config import SamplingConfig

    sampling = sampling_from_dict(report.get("default_sampling") or {})
    return SamplingConfig.from_arguments(sampling, guidance_scale=stored_guidance(report)).describe()
