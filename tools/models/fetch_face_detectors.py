"""Fetch the BlazeFace face-detector models from the mediapipe 0.10.21 wheel.

Why this script exists: mediapipe releases >= 0.10.30 no longer ship these models,
and the daemon runs them through LiteRT without importing mediapipe at all. The
last wheels that carry them are on PyPI, so the reproducible source is "this file
inside that wheel", verified by a pinned SHA-256. The models are byte-identical on
every platform, so we always download the cp311 manylinux_2_28_x86_64 wheel
(with ``--platform``), whatever machine runs the script.

Usage::

    python tools/models/fetch_face_detectors.py [--out models]

It needs only the standard library and pip (no mediapipe install).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
MODEL_DIR_IN_WHEEL = "mediapipe/modules/face_detection"

# Pinned so that a changed upstream file fails loudly instead of silently
# changing detector behaviour (anchor layout, score calibration).
PINNED_SHA256: dict[str, str] = {
    "face_detection_short_range.tflite": (
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
    ),
    "face_detection_full_range_sparse.tflite": (
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"
    ),
}

REPO_ROOT = Path(__file__).resolve().parents[2]


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def download_wheel(dest: Path) -> Path:
    """Download the mediapipe wheel (no dependencies) into ``dest`` and return its path.

    ``--only-binary`` with an explicit platform/ABI makes pip fetch the same
    wheel on any host, rather than trying (and failing) to resolve one for it.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--abi",
        "cp311",
        "--platform",
        WHEEL_PLATFORM,
        "--dest",
        str(dest),
        f"mediapipe=={MEDIAPIPE_VERSION}",
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one mediapipe wheel in {dest}, found {wheels}")
    return wheels[0]


def extract_models(wheel: Path, out_dir: Path) -> None:
    """Copy the pinned models and mediapipe's LICENSE out of ``wheel`` into ``out_dir``.

    Every model is checked against its pinned hash before anything is written, so
    a mismatch leaves ``out_dir`` untouched.
    """
    with zipfile.ZipFile(wheel) as zf:
        blobs: dict[str, bytes] = {}
        for name, expected in PINNED_SHA256.items():
            data = zf.read(f"{MODEL_DIR_IN_WHEEL}/{name}")
            actual = sha256_bytes(data)
            if actual != expected:
                raise RuntimeError(f"{name}: sha256 {actual} does not match pinned {expected}")
            blobs[name] = data
        license_text = zf.read(f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE")

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        (out_dir / name).write_bytes(data)
        print(f"wrote {out_dir / name} ({len(data)} bytes, sha256 ok)")
    licenses = out_dir / "licenses"
    licenses.mkdir(exist_ok=True)
    (licenses / "mediapipe-LICENSE.txt").write_bytes(license_text)
    print(f"wrote {licenses / 'mediapipe-LICENSE.txt'}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, download the wheel into a temp dir, extract and verify."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "models",
        help="output directory (default: <repo>/models)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mediapipe-wheel-") as tmp:
        wheel = download_wheel(Path(tmp))
        extract_models(wheel, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
