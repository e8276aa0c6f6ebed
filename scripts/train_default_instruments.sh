#!/usr/bin/env bash
# Reproduces the instrument default (vqgen/pretrained/audio-instruments) from the FluidR3 GM sound font.
# Needs the sound font for the data only: apt-get install fluidsynth fluid-soundfont-gm
# Fixed seeds throughout; every stage resumes when run again. Run from the repository root:
#   bash scripts/train_default_instruments.sh
# One CPU thread per job by default (the 2-core reference machine); set OMP_NUM_THREADS to change it.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
RUN=${RUN:-runs/notes}
V=.venv/bin/vqgen

$V data build instrument-notes
# The codec: code level 0 is the tracked pitch of each 20 ms frame; 11 residual levels of 1,024 codes carry the
# timbre (12 levels = 6 kbit/s; 3 / 6 levels give 1.5 / 3 kbit/s): the measured log amplitude of each of 64
# harmonics and of 64 noise bands between them. No network: the codebooks are fitted by k-means over every frame
# of the whole training notes (a few minutes on one thread); the decoder synthesises harmonics plus noise.
[ -f "$RUN/parametric/fit.json" ] || $V train-tokenizer --modality audio --data demo:instrument-notes --output "$RUN/parametric" \
  --frontend parametric-harmonic --strides 320 --quantizer rvq --num-levels 11 --codebook-size 1024 \
  --quantizer-dropout 0.5 --sample-rate 16000 --segment-seconds 1 --seed 0 --no-progress
# Codes of whole one-second notes with two condition fields from metadata.csv: family (16) and pitch. The
# prior trains on the originals plus 3 jittered copies of each training note (gain +-6 dB, shift +-0.1 s;
# --jitter-speed 0: a tape-speed change would move the pitch off its label); validation on the plain test codes.
$V encode --tokenizer "$RUN/parametric" --data demo:instrument-notes --split train --segment-seconds 1 \
  --condition-fields family,pitch --augment-copies 3 --jitter-speed 0 --seed 0 --output "$RUN/shards-train-jit3" \
  --no-progress
$V encode --tokenizer "$RUN/parametric" --data demo:instrument-notes --split test --segment-seconds 1 \
  --condition-fields family,pitch --output "$RUN/shards-test" --no-progress
# MusicGen's delay pattern: one transformer step per frame, 12 level heads. The fifth version's prior: 288 wide,
# 8 layers, from scratch, batch 64 in bf16, stopped at step 1,750 of a 2,000-step cosine schedule (the device
# run's time box, kept so that this reproduces it). It ran on one lent H200 in about 100 s; on a CPU,
# PRIOR_PRECISION=no trains it in float32. Trained longer, priors like this one overfit the training programs
# and their samples lose the family (benchmarks/RESULTS.md, "Priors trained on the lent H200").
$V train-prior --shards "$RUN/shards-train-jit3" --val-shards "$RUN/shards-test" --tokenizer "$RUN/parametric" \
  --layout delay --output "$RUN/prior-w288" --hidden-size 288 --num-layers 8 --num-heads 8 --dropout 0.15 \
  --max-steps 2000 --stop-after 1750 --batch-size 64 --learning-rate 6e-4 --lr-schedule cosine --warmup-steps 200 \
  --weight-decay 0.05 --ema-decay 0.999 --mixed-precision "${PRIOR_PRECISION:-bf16}" --checkpoint-every 250 \
  --keep-checkpoints 2 --eval-every 500 --log-every 100 --seed 1 --resume --no-progress
# Defaults chosen on a held-out draw (seed 1, 720 samples): temperature 0.8, top-k 100, guidance 5 with the
# six coarse code levels (the pitch and the first five magnitude levels) given 0.75 of its strength (scale 4)
# and the six finest all of it (scale 5).
.venv/bin/python scripts/export_pipeline.py --pipeline "$RUN/prior-w288/pipeline" --output vqgen/pretrained/audio-instruments \
  --default-guidance-scale 5 --default-guidance-level-weights 0.75,0.75,0.75,0.75,0.75,0.75,1,1,1,1,1,1 \
  --default-temperature 0.8 --default-top-k 100 --card "$RUN/MODEL_CARD.md" --script scripts/train_default_instruments.sh
