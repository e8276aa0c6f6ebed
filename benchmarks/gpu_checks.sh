#!/usr/bin/env bash
# The GPU figures in benchmarks/RESULTS.md, in one go on a CUDA machine (run from the repository root with
# vqgen importable, e.g. after the README's install):
#
#     bash benchmarks/gpu_checks.sh [OUTDIR]        # STEPS=20 for a quick dry run of the training part
#
# 1. the CUDA-graph decoder step against the eager one (the tests that skip on CPU-only machines);
# 2. benchmarks/sampling.py on the GPU in float32 and bfloat16 (vqgen's sampler vs transformers' generate(),
#    batch 1 / 16 / 64, and the image pipeline), JSON copied to OUTDIR;
# 3. a bf16 mixed-precision training smoke test through the CLI (Accelerate): image tokenizer, resumed from
#    its checkpoint for more steps, encode, prior, then generate on the GPU in bf16; the log lines show the
#    losses falling and the run's wall times;
# 4. the shipped image pipeline on the GPU: 1,000 samples, wall time;
# 5. benchmarks/fsdp_check.sh: prior training under Accelerate's FSDP plugin, checkpoint, resume, sample;
# 6. benchmarks/tokenizer_training_speed.py: the colour tokenizer's training throughput beside VQModel in fp32
#    and bf16 at 64 and 256 px, with the peak memory of each step;
# 7. benchmarks/pipeline_speed.py: the shipped instrument and emoji pipelines' sampling speed in fp32 and bf16.
# Each step runs even if an earlier one failed; the exit status says whether all passed.
set -uo pipefail
out=${1:-benchmarks/out/gpu}
steps=${STEPS:-300}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
work=$(mktemp -d)
vqgen() { "$py" -m vqgen.cli "$@"; }
status=0
step() { echo "=== $* ($(date +%T))"; "$@" || { echo "=== FAILED: $*"; status=1; }; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$py" -c "import torch, transformers, diffusers, accelerate as a; print('torch', torch.__version__,
'transformers', transformers.__version__, 'diffusers', diffusers.__version__, 'accelerate', a.__version__)"

step "$py" -m pytest -q -p no:cacheprovider tests/test_sampling.py -k cuda -rs
for dtype in float32 bfloat16; do
    step "$py" benchmarks/sampling.py --device cuda --dtype "$dtype" --repeats 3
    cp "benchmarks/out/sampling-cuda-$dtype.json" "$out/" 2>/dev/null
done

common=(--no-progress --mixed-precision bf16 --log-every 50)
step vqgen train-tokenizer --modality image --data demo:mnist --output "$work/tok" --max-steps "$((steps * 2 / 3))" \
    --batch-size 64 --checkpoint-every "$((steps / 3))" --eval-every "$((steps / 3))" "${common[@]}"
step vqgen train-tokenizer --modality image --data demo:mnist --output "$work/tok" --max-steps "$steps" \
    --batch-size 64 --checkpoint-every "$((steps / 3))" --eval-every "$((steps / 3))" "${common[@]}"
step vqgen encode --tokenizer "$work/tok" --data demo:mnist --output "$work/shards" --no-progress
step vqgen train-prior --shards "$work/shards" --tokenizer "$work/tok" --output "$work/prior" \
    --max-steps "$steps" --batch-size 64 --checkpoint-every "$steps" --eval-every "$steps" "${common[@]}"
step vqgen generate image --pipeline "$work/prior/pipeline" --device cuda --dtype bfloat16 --seed 0 \
    --output "$out/smoke-bf16.png"
echo "shipped image pipeline, 1000 samples on the GPU (fp32; load and PNG writing included), wall time:"
time step vqgen generate image --device cuda --num-samples 1000 --batch-size 250 --seed 0 --no-progress \
    --output "$work/shipped"
vqgen generate image --device cuda --num-samples 16 --seed 0 --output "$out/shipped-cuda.png"
step bash benchmarks/fsdp_check.sh "$out"
step "$py" benchmarks/tokenizer_training_speed.py --device cuda --precisions fp32 bf16 --resolutions 64 256
step "$py" benchmarks/pipeline_speed.py --pipeline instruments --device cuda --dtypes float32 bfloat16 \
    --num-samples 1024 --batch-size 256
step "$py" benchmarks/pipeline_speed.py --pipeline emoji --device cuda --dtypes float32 bfloat16 \
    --num-samples 1024 --batch-size 256 --output-name pipeline_speed_emoji
cp benchmarks/out/tokenizer_training_speed.json benchmarks/out/pipeline_speed*.json "$out/" 2>/dev/null
for part in tok prior; do
    for log in log eval; do cp "$work/$part/$log.csv" "$out/smoke-$part-$log.csv" 2>/dev/null; done
done
exit $status
