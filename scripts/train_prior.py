"""Prior training for ``accelerate launch`` (one process or many): the same flags as ``vqgen train-prior``.

accelerate launch --num_processes 2 scripts/train_prior.py --shards runs/shards/train --tokenizer runs/tok --output runs/prior
"""

import sys

from vqgen.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-prior", *sys.argv[1:]]))
