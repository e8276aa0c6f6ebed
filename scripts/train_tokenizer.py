"""Tokenizer training for ``accelerate launch`` (one process or many): the same flags as ``vqgen train-tokenizer``.

accelerate launch --num_processes 2 scripts/train_tokenizer.py --data demo:mnist --output runs/tok
"""

import sys

from vqgen.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-tokenizer", *sys.argv[1:]]))
