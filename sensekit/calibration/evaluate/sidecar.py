"""Write fitted temperatures into the model sidecars (`sensekit eval --save-temperature`).

Only the `temperature` key changes; every other key keeps its value and order, and the file
keeps its indentation. The write is atomic (temporary file + rename), so a crash never leaves a
half-written sidecar, which would stop the daemon from loading the model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sensekit.errors import ModelError


def _indent(text: str) -> int:
    """The indentation of the file's first nested line (1 or 2 in ours)."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped:
            return max(1, len(line) - len(stripped))
    return 2


def save_temperature(sidecar: Path, entry: dict[str, Any]) -> None:
    """Set `sidecar["temperature"] = entry`, keeping everything else."""
    try:
        text = sidecar.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model sidecar {sidecar}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"model sidecar {sidecar}: expected a JSON object")
    data["temperature"] = entry
    new_text = json.dumps(data, indent=_indent(text)) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{sidecar.name}.", dir=sidecar.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_text)
        os.chmod(tmp, sidecar.stat().st_mode & 0o777)
        os.replace(tmp, sidecar)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
