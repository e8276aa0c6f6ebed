#!/usr/bin/env bash
# Sharded prior training through Accelerate's FSDP plugin, on one CUDA device (FSDP refuses CPU-only runs):
# a tiny image tokenizer, encode, then `accelerate launch --use_fsdp ... scripts/train_prior.py` with a
# checkpoint, `--resume` on to more steps, and the saved pipeline loaded and sampled. Run from the repository
# root with vqgen importable:
#
#     bash benchmarks/fsdp_check.sh [OUTDIR]
set -euo pipefail
out=${1:-benchmarks/out/fsdp}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
work=$(mktemp -d)
vqgen() { "$py" -m vqgen.cli "$@"; }
fsdp=("$py" -m accelerate.commands.launch --use_fsdp --fsdp_sharding_strategy FULL_SHARD --num_processes 1
    --mixed_precision bf16 scripts/train_prior.py)
prior=(--shards "$work/shards" --tokenizer "$work/tok" --output "$work/prior" --batch-size 64
    --hidden-size 64 --num-layers 2 --num-heads 4 --checkpoint-every 20 --eval-every 20 --log-every 10
    --no-progress)

vqgen train-tokenizer --modality image --data demo:mnist --output "$work/tok" --max-steps 20 --batch-size 64 \
    --no-progress
vqgen encode --tokenizer "$work/tok" --data demo:mnist --output "$work/shards" --no-progress
"${fsdp[@]}" "${prior[@]}" --max-steps 20
"${fsdp[@]}" "${prior[@]}" --max-steps 40 --resume
vqgen info "$work/prior/pipeline"
vqgen generate image --pipeline "$work/prior/pipeline" --device cuda --seed 0 --output "$out/fsdp-samples.png"
cp "$work/prior/log.csv" "$out/fsdp-prior-log.csv"
echo "FSDP check passed"
