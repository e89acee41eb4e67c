"""Voice benchmark: the same as `sensekit bench --voice`, runnable from a checkout.

.venv/bin/python bench/voice.py [--json bench/voice.json]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from sensekit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--voice", *sys.argv[1:]]))
