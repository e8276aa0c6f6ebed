"""Generation for ``accelerate launch``: the same flags as ``vqgen generate``; samples split across processes.

accelerate launch --num_processes 2 scripts/generate.py image --num-samples 64 --output samples.png
"""

import sys

from vqgen.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
