#!/usr/bin/env bash
# One command to rebuild models/voice_prosody_int8.{tflite,json}, _eval.json, _confusion.png
# and models/voice_prosody_folds/ from EmoDB (../shared/data/emodb, never copied here).
#
# Why three steps in two venvs: feature extraction and the int8 evaluation must run the
# daemon's own code (sensekit, numpy 2, ai-edge-litert) in .venv, while training and the
# int8 conversion need TensorFlow 2.15 (numpy < 2) in .venv-build. TensorFlow is never a
# runtime dependency. .venv-build/ is gitignored and reused if present.
#
# Usage: tools/models/build_voice_model.sh [--seed N] [--models DIR] [--build DIR] ...
#        (options go to every step; PYTHON=/path/to/python3.11 to create .venv-build)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
python="${PYTHON:-python3.11}"
script=tools/models/build_voice_model.py

if [[ ! -x .venv/bin/python ]]; then
    echo "error: the runtime venv .venv/ is missing: run ./install.sh first" >&2
    exit 2
fi
if [[ ! -x .venv-build/bin/python ]]; then
    "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
        || { echo "error: TensorFlow 2.15 wheels need Python 3.11 here; set PYTHON=" >&2; exit 2; }
    "$python" -m venv .venv-build
fi
.venv-build/bin/python -m pip install --quiet \
    -r tools/models/requirements-build.txt -c tools/models/constraints-build.txt

# One BLAS/OpenMP thread: the timing printed by step 1 is then the daemon's, and results do
# not depend on the machine's core count.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

.venv/bin/python "$script" features "$@"        # build/voice/emodb_features.npz
.venv-build/bin/python "$script" train "$@"     # LOSO float + int8 folds, shipped model
.venv/bin/python "$script" evaluate "$@"        # int8 via VoiceClassifier, eval JSON + PNG
