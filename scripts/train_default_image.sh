#!/usr/bin/env bash
# Reproduces the shipped default image pipeline (vqgen/pretrained/image-mnist) from the bundled demo digits.
# Fixed seeds throughout; on the 2-core CPU machine the tokenizer took about 25 minutes and the prior the
# time given in the model card. Run from the repository root:  bash scripts/train_default_image.sh
set -euo pipefail
export OMP_NUM_THREADS=1  # the shipped run used one thread per job (other jobs shared the machine)
RUN=${RUN:-runs/default}
V=.venv/bin/vqgen

$V train-tokenizer --modality image --data demo:mnist --output "$RUN/tok" --max-steps 1200 --batch-size 64 \
  --learning-rate 1e-3 --lr-schedule cosine --warmup-steps 100 --dead-code-threshold 20 \
  --checkpoint-every 100 --eval-every 300 --log-every 50 --seed 0 --resume
$V evaluate-tokenizer --tokenizer "$RUN/tok" --data demo:mnist --split test --no-progress --plot
$V encode --tokenizer "$RUN/tok" --data demo:mnist --split train --augment-copies 4 --seed 0 --output "$RUN/shards-train"
$V encode --tokenizer "$RUN/tok" --data demo:mnist --split test --output "$RUN/shards-test"
$V train-prior --shards "$RUN/shards-train" --val-shards "$RUN/shards-test" --tokenizer "$RUN/tok" \
  --output "$RUN/prior" --hidden-size 192 --num-layers 6 --num-heads 6 --max-steps 3000 --batch-size 64 \
  --learning-rate 6e-4 --lr-schedule cosine --warmup-steps 200 --weight-decay 0.01 --ema-decay 0.999 \
  --checkpoint-every 250 --eval-every 500 --log-every 50 --seed 0 --resume
# The background prior of likelihood-ratio anomaly scores (vqgen score, benchmarks/anomaly.py): a small
# unconditional prior on the codes of 8 generic views (rotated, mirrored, warped, re-stroked) of each digit.
$V fit-background --pipeline "$RUN/prior/pipeline" --data demo:mnist --output "$RUN/pipeline" --copies 8 \
  --steps 1500 --seed 0
.venv/bin/python scripts/export_pipeline.py --pipeline "$RUN/pipeline" --output vqgen/pretrained/image-mnist \
  --card "$RUN/MODEL_CARD.md" --script scripts/train_default_image.sh
