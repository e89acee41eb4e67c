#!/usr/bin/env bash
# Proves, on an x86_64 Debian machine, that sensekit installs and runs on aarch64 the way it
# would on a Raspberry Pi 4/5 with 64-bit Raspberry Pi OS (Debian Bookworm, Python 3.11):
#
#   1. wheel      build the sensekit wheel from this checkout (models, demo media, configs inside)
#   2. wheels     resolve the runtime dependencies with constraints.txt for aarch64 AND x86_64
#                 (every resolved distribution must be pinned there), and download the aarch64
#                 cp311 wheels into a wheelhouse on the host (no emulation needed)
#   3. rootfs     a Debian Bookworm arm64 root filesystem (debootstrap through qemu-user binfmt),
#                 cached as a tarball in the work directory: a rerun only unpacks it
#   4. install    inside that rootfs (chroot, emulated), install offline from the wheelhouse with
#                 deploy/raspberrypi/install.sh, exactly as on a Pi
#   5. check      import and exercise every native dependency (OpenCV decodes the demo video,
#                 soundfile reads the demo FLAC, soxr, scipy, PortAudio, LiteRT), then
#                 `sensekit selftest` as the service user
#
# Usage (as root, from anywhere):
#   bash deploy/raspberrypi/prove-aarch64.sh [--workdir DIR] [--keep] [--apt] [--rebuild-rootfs] [--cpu MODEL]
#   --workdir DIR  where the wheel, wheelhouse, rootfs cache and the rootfs go
#                  (default /var/tmp/sensekit-aarch64; the cache survives reboots there)
#   --keep         leave the installed rootfs in DIR/rootfs for inspection (chroot into it)
#   --apt          let install.sh run apt-get inside the rootfs (network; default --no-apt,
#                  because debootstrap already installed the packages install.sh would)
#   --rebuild-rootfs  ignore the cached rootfs tarball and run debootstrap again
#   --cpu MODEL    the CPU qemu emulates (QEMU_CPU): cortex-a72 = Pi 4 (default), cortex-a76 = Pi 5.
#                  Not qemu's default "max": with it, XNNPACK's int8 path gives wrong results
#                  here (see AARCH64.md), which says nothing about a Pi.
# Needs: debootstrap, qemu-user-static (binfmt registered with the F flag, as Debian does),
# a Python 3.11+ with pip on the host (the checkout's .venv when present), PyPI and a Debian
# mirror. See deploy/raspberrypi/AARCH64.md for what it proves, what it does not, and timings.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORKDIR=/var/tmp/sensekit-aarch64
KEEP=0
APT=0
REBUILD=0
CPU=cortex-a72
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The rootfs gets what install.sh would apt-get install (its APT_PACKAGES, read from it so the
# two never drift), plus what a Raspberry Pi OS image has anyway: systemd (install.sh enables
# the units with systemctl) and passwd (useradd for the service user). The list is part of the
# cache key, so a changed list never reuses a stale cached rootfs.
APT_FROM_INSTALL="$(sed -n 's/^APT_PACKAGES=(\(.*\))$/\1/p' "$HERE/install.sh" 2>/dev/null || true)"
DEB_PACKAGES="$(echo "${APT_FROM_INSTALL:-python3 python3-venv libportaudio2}" systemd passwd |
  tr ' ' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"

while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) WORKDIR="$2"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --keep) KEEP=1; shift ;;
    --apt) APT=1; shift ;;
    --rebuild-rootfs) REBUILD=1; shift ;;
    --cpu) CPU="$2"; shift 2 ;;
    --cpu=*) CPU="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "prove-aarch64: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "prove-aarch64: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
for tool in debootstrap chroot mount umount tar findmnt; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install debootstrap qemu-user-static)"
done
BINFMT=/proc/sys/fs/binfmt_misc/qemu-aarch64
[ -r "$BINFMT" ] || die "qemu-aarch64 is not registered in binfmt_misc (apt-get install qemu-user-static)"
grep -q '^enabled' "$BINFMT" || die "the qemu-aarch64 binfmt entry is disabled"
# With the F(ix binary) flag the kernel holds the interpreter open, so nothing has to be copied
# into the rootfs; without it the chroot would need /usr/bin/qemu-aarch64-static inside.
grep -q '^flags:.*F' "$BINFMT" || die "qemu-aarch64 binfmt lacks the F flag (Debian's qemu-user-static sets it)"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (set PYTHON=...)"

CONSTRAINTS="$HERE/constraints.txt"
[ -f "$CONSTRAINTS" ] || die "missing $CONSTRAINTS"
mkdir -p "$WORKDIR"
WORKDIR="$(cd "$WORKDIR" && pwd)"
ROOTFS="$WORKDIR/rootfs"
CACHE_KEY="$(printf '%s|%s|%s|minbase' "$SUITE" "$MIRROR" "$DEB_PACKAGES" | sha256sum | cut -c1-12)"
ROOTFS_TAR="$WORKDIR/rootfs-$SUITE-arm64-$CACHE_KEY.tar"

# ---------------------------------------------------------------- phase timing and cleanup
declare -a PHASE_NAMES=() PHASE_SECONDS=()
T_START=$EPOCHREALTIME
PHASE=""
PHASE_T0=""
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
phase() {  # phase NAME: closes the running phase (if any) and starts NAME
  local t
  t=$(now)
  if [ -n "$PHASE" ]; then PHASE_NAMES+=("$PHASE"); PHASE_SECONDS+=("$(elapsed "$PHASE_T0" "$t")"); fi
  PHASE="$1"
  PHASE_T0=$t
  [ -n "$PHASE" ] && echo "== [$(date +%H:%M:%S)] $PHASE"
  return 0
}

mounted_under() { findmnt -rn -o TARGET | awk -v r="$1" 'index($0, r "/") == 1 || $0 == r' | sort -r; }
unmount_all() {
  local root="$1" target
  [ -d "$root" ] || return 0
  for target in $(mounted_under "$root"); do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
  done
}
remove_rootfs() {  # never rm -rf through a live mount (a bound /dev would be host /dev)
  local root="$1"
  [ -d "$root" ] || return 0
  unmount_all "$root"
  if [ -n "$(mounted_under "$root")" ]; then
    echo "prove-aarch64: still mounted under $root, not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}
cleanup() {
  local rc=$?
  unmount_all "$ROOTFS"
  unmount_all "$ROOTFS.new"
  remove_rootfs "$ROOTFS.new" || true
  if [ "$KEEP" -eq 0 ]; then remove_rootfs "$ROOTFS" || true; fi
  if [ $rc -ne 0 ]; then
    echo "prove-aarch64: FAILED in phase '${PHASE:-setup}' (exit $rc) after $(elapsed "$T_START" "$(now)") s" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every command in the rootfs gets a clean environment: the host's PIP_* settings (find-links,
# index) and locale must not leak into the emulated Pi.
# QEMU_CPU (read by qemu-user itself) makes the emulated CPU a Raspberry Pi's.
in_rootfs() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 QEMU_CPU="$CPU" chroot "$ROOTFS" "$@"
}

# pip on the host, without "Location ... is ignored" warnings about find-links or extra index
# directories of the host's pip configuration that do not exist (noise, not a problem).
host_pip() {
  "$PYTHON" -m pip "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

# manylinux tags an aarch64 Bookworm (glibc 2.36) accepts; pip does not widen a --platform
# itself, and LiteRT's wheels are manylinux_2_27, numpy's 2_27/2_28, soundfile's 2_28.
platform_args() {  # platform_args ARCH
  local i
  printf -- '--platform manylinux2014_%s ' "$1"
  for i in $(seq 17 36); do printf -- '--platform manylinux_2_%s_%s ' "$i" "$1"; done
  printf -- '--python-version 3.11 --implementation cp --abi cp311 --only-binary=:all:'
}

# ---------------------------------------------------------------- 1. wheel
phase "1 build the sensekit wheel"
rm -rf "$WORKDIR/dist"
host_pip wheel --quiet --no-deps -w "$WORKDIR/dist" "$REPO"
WHEEL="$(ls "$WORKDIR"/dist/sensekit-*.whl)"
echo "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

# ---------------------------------------------------------------- 2. wheels
phase "2 resolve with constraints.txt (aarch64 + x86_64), download aarch64 wheels"
# Both architectures must resolve to the same pinned set: install.sh uses the same constraints
# on the x86 CI, developer machines and the Pi. The report lists what pip would install; each
# entry must be pinned with == in constraints.txt, so nothing floats on a Pi.
for arch in aarch64 x86_64; do
  # shellcheck disable=SC2046  # word splitting of the platform flags is intended
  host_pip install --quiet --dry-run --ignore-installed --target "$WORKDIR/unused-target" \
    $(platform_args "$arch") -c "$CONSTRAINTS" --report "$WORKDIR/resolve-$arch.json" "$WHEEL"
  "$PYTHON" - "$WORKDIR/resolve-$arch.json" "$CONSTRAINTS" "$arch" <<'PY'
import json, re, sys
report, constraints, arch = sys.argv[1:]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {}
for line in open(constraints):
    line = line.split("#", 1)[0].strip()
    if line:
        name, _, version = line.partition("==")
        pins[norm(name)] = version.strip()
resolved = {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.load(open(report))["install"]}
resolved.pop("sensekit", None)
unpinned = sorted(f"{n}=={v}" for n, v in resolved.items() if pins.get(n) != v)
if unpinned:
    sys.exit(f"{arch}: resolved but not pinned with == in constraints.txt: {', '.join(unpinned)}")
print(f"{arch}: {len(resolved)} distributions, all pinned")
PY
done
rm -rf "$WORKDIR/wheelhouse" "$WORKDIR/unused-target"
# shellcheck disable=SC2046
host_pip download --quiet $(platform_args aarch64) -c "$CONSTRAINTS" \
  -d "$WORKDIR/wheelhouse" "$WHEEL"
echo "wheelhouse: $(ls "$WORKDIR/wheelhouse" | wc -l) wheels, $(du -sh "$WORKDIR/wheelhouse" | cut -f1)"

# ---------------------------------------------------------------- 3. rootfs
phase "3 Debian $SUITE arm64 rootfs"
remove_rootfs "$ROOTFS"
remove_rootfs "$ROOTFS.new"
if [ "$REBUILD" -eq 1 ] || [ ! -f "$ROOTFS_TAR" ]; then
  echo "debootstrap (emulated second stage; a few minutes) -> cached as $(basename "$ROOTFS_TAR")"
  debootstrap --arch=arm64 --variant=minbase --include="$DEB_PACKAGES" \
    "$SUITE" "$ROOTFS.new" "$MIRROR" >"$WORKDIR/debootstrap.log" 2>&1 \
    || { tail -20 "$WORKDIR/debootstrap.log" >&2; die "debootstrap failed (log: $WORKDIR/debootstrap.log)"; }
  [ -z "$(mounted_under "$ROOTFS.new")" ] || die "debootstrap left mounts under $ROOTFS.new"
  tar -C "$ROOTFS.new" --numeric-owner -cf "$ROOTFS_TAR.part" .
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
  mv "$ROOTFS.new" "$ROOTFS"
  ROOTFS_SOURCE="debootstrap (cold)"
else
  echo "using cached $(basename "$ROOTFS_TAR") (delete it or pass --rebuild-rootfs to rebuild)"
  mkdir "$ROOTFS"
  tar -C "$ROOTFS" --numeric-owner -xf "$ROOTFS_TAR"
  ROOTFS_SOURCE="cached tarball (warm)"
fi
[ ! -e "$ROOTFS/usr/bin/qemu-aarch64-static" ] || die "unexpected qemu binary inside the rootfs"
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs sysfs "$ROOTFS/sys"
mount --rbind /dev "$ROOTFS/dev"
mount --make-rslave "$ROOTFS/dev"
[ "$(in_rootfs uname -m)" = aarch64 ] || die "the chroot does not run aarch64 code"
in_rootfs true || die "qemu-user does not know the CPU model $CPU (qemu-aarch64-static -cpu help)"
echo "rootfs: $(in_rootfs sh -c '. /etc/os-release; echo "$PRETTY_NAME"'), $(in_rootfs python3 --version), $(in_rootfs ldd --version | head -1 | awk '{print "glibc " $NF}'), machine $(in_rootfs uname -m)"

# ---------------------------------------------------------------- 4. install
phase "4 install sensekit in the rootfs (offline, from the wheelhouse)"
STAGE="$ROOTFS/tmp/sensekit-proof"
mkdir -p "$STAGE"
cp -r "$HERE" "$STAGE/raspberrypi"
cp -r "$WORKDIR/wheelhouse" "$STAGE/wheelhouse"
cp "$WHEEL" "$STAGE/"
IN_WHEEL="/tmp/sensekit-proof/$(basename "$WHEEL")"
# --no-selftest: phase 5b runs the same selftest once, as the service user (under emulation it
# takes minutes; running it twice would double that for nothing).
INSTALL_ARGS=(install --wheel "$IN_WHEEL" --wheelhouse /tmp/sensekit-proof/wheelhouse
  --constraints /tmp/sensekit-proof/raspberrypi/constraints.txt --no-start --no-selftest)
if [ "$APT" -eq 1 ]; then
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
else
  INSTALL_ARGS+=(--no-apt)
fi
echo "running: install.sh ${INSTALL_ARGS[*]}"
in_rootfs bash /tmp/sensekit-proof/raspberrypi/install.sh "${INSTALL_ARGS[@]}"
# Idempotence: the same wheel and constraints again must change nothing.
echo "running install.sh a second time (must be a no-op)"
again="$(in_rootfs bash /tmp/sensekit-proof/raspberrypi/install.sh "${INSTALL_ARGS[@]}")"
echo "$again"
grep -q "already the one in use" <<<"$again" || die "the second install.sh run was not a no-op"
INSTALLED_BY="deploy/raspberrypi/install.sh (then again: a no-op)"
in_rootfs /opt/sensekit/bin/sensekit --version
# The layout install.sh promises (deploy/raspberrypi/README or the issue): checked, not assumed.
in_rootfs sh -euc '
  getent passwd sensekit >/dev/null || { echo "no sensekit user"; exit 1; }
  for g in video audio; do id -nG sensekit | tr " " "\n" | grep -qx "$g" || { echo "sensekit not in $g"; exit 1; }; done
  test -d /etc/sensekit && test "$(stat -c %U:%G:%a /etc/sensekit)" = root:sensekit:750 || { echo "/etc/sensekit is not root:sensekit 0750"; exit 1; }
  test -f /etc/sensekit/sensekit.yaml.example || { echo "no /etc/sensekit/sensekit.yaml.example"; exit 1; }
  for u in sensekit.service sensekit-provision.service; do
    test -f /etc/systemd/system/$u || { echo "no /etc/systemd/system/$u"; exit 1; }
    systemctl is-enabled --quiet $u || { echo "$u not enabled"; exit 1; }
  done
  echo "layout: user sensekit (video, audio), /etc/sensekit 0750 root:sensekit, both units installed and enabled"
'

# ---------------------------------------------------------------- 5. check
phase "5a native dependencies under emulation"
# What a wheel can get wrong on aarch64 without failing to install: a codec missing from
# OpenCV's bundled FFmpeg, libsndfile without FLAC, PortAudio not found, a LiteRT build that
# crashes at allocate_tensors(). Each is exercised with the bundled media and models.
# The interpreter of the release in use.
VENV_PYTHON=/opt/sensekit/current/bin/python
echo "interpreter: $VENV_PYTHON"
in_rootfs "$VENV_PYTHON" - <<'PY'
import importlib.metadata as md
import os
import platform
import zoneinfo
from pathlib import Path

import numpy as np

import sensekit
from sensekit.runtime import TFLiteModel, models_dir

assert platform.machine() == "aarch64", platform.machine()
pkg = Path(sensekit.__file__).parent
media = pkg / "media" / "demo"

import cv2

cap = cv2.VideoCapture(str(media / "entrance.mp4"))
assert cap.isOpened(), "OpenCV cannot open entrance.mp4 (no FFmpeg backend?)"
frames = []
while len(frames) < 30:
    ok, frame = cap.read()
    if not ok:
        break
    frames.append(frame)
cap.release()
assert len(frames) == 30 and frames[0].ndim == 3, f"decoded {len(frames)} frames"
assert float(np.std(frames[-1])) > 1.0, "decoded frames are blank"
print(f"opencv {cv2.__version__}: decoded {len(frames)} frames {frames[0].shape} from entrance.mp4")

import soundfile

audio, rate = soundfile.read(str(media / "entrance.flac"), dtype="float32", always_2d=True)
assert audio.shape[0] > rate and np.abs(audio).max() > 0.01, audio.shape
print(f"soundfile {soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__}): "
      f"{audio.shape[0] / rate:.1f} s at {rate} Hz from entrance.flac")

import soxr

target = 44100 if rate != 44100 else 16000  # a real rate change (the demo FLAC is 16 kHz)
resampled = soxr.resample(audio[:, 0], rate, target)
assert abs(len(resampled) - audio.shape[0] * target / rate) <= 2, len(resampled)
assert np.isfinite(resampled).all() and np.abs(resampled).max() > 0.01
print(f"soxr {soxr.__version__}: {rate} Hz -> {target} Hz, {len(resampled)} samples")

import scipy
import scipy.fft
import scipy.signal

x = np.cos(np.linspace(0, 8 * np.pi, 256))
assert np.allclose(scipy.fft.idct(scipy.fft.dct(x, norm="ortho"), norm="ortho"), x)
assert scipy.signal.lfilter([1.0], [1.0, -0.97], x).shape == x.shape
print(f"scipy {scipy.__version__}: dct/idct round trip, lfilter")

import sounddevice

print(f"sounddevice {sounddevice.__version__}: {sounddevice.get_portaudio_version()[1]}, "
      f"{len(sounddevice.query_devices())} devices (none expected in a chroot)")

import paho.mqtt.client as mqtt
import pydantic
import yaml

mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
assert yaml.safe_load("a: [1, 2]") == {"a": [1, 2]}
zoneinfo.ZoneInfo("Europe/Paris")
print(f"paho-mqtt {md.version('paho-mqtt')}, pydantic {pydantic.VERSION}, PyYAML {yaml.__version__}, "
      f"tzdata {md.version('tzdata')}, numpy {np.__version__}")

rng = np.random.default_rng(0)
paths = sorted(models_dir().rglob("*.tflite"))
assert len(paths) >= 4, paths
for path in paths:
    model = TFLiteModel(path)
    inputs = []
    for spec in model.inputs:
        if spec.dtype.kind == "f":
            inputs.append(rng.random(spec.shape, dtype=np.float32).astype(spec.dtype))
        else:
            info = np.iinfo(spec.dtype)
            inputs.append(rng.integers(info.min, info.max, size=spec.shape, dtype=spec.dtype))
    outputs = model.run(inputs)
    assert all(np.isfinite(o.astype(np.float64)).all() for o in outputs), path
print(f"ai-edge-litert {md.version('ai-edge-litert')}: {len(paths)} models loaded, allocated, invoked")
PY

phase "5b sensekit selftest (as the service user)"
RUN_AS=()
if in_rootfs getent passwd sensekit >/dev/null; then
  RUN_AS=("--userspec=$(in_rootfs id -u sensekit):$(in_rootfs id -g sensekit)")
fi
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/sensekit LANG=C.UTF-8 QEMU_CPU="$CPU" \
  chroot "${RUN_AS[@]}" "$ROOTFS" /opt/sensekit/bin/sensekit selftest
SELFTEST="sensekit selftest"

phase "summary"
FREEZE="$(in_rootfs "$VENV_PYTHON" -m pip freeze --all 2>/dev/null | grep -v -E '^(pip|setuptools)==' | tr '\n' ' ')"
phase ""
TOTAL="$(elapsed "$T_START" "$(now)")"
echo
echo "================ sensekit on aarch64 (qemu-user emulation): PASSED"
echo "rootfs:      Debian $SUITE arm64 from $ROOTFS_SOURCE, emulated CPU $CPU"
echo "installed:   by $INSTALLED_BY"
echo "selftest:    $SELFTEST"
echo "versions:    $FREEZE"
for i in "${!PHASE_NAMES[@]}"; do
  printf '%8s s  %s\n' "${PHASE_SECONDS[$i]}" "${PHASE_NAMES[$i]}"
done
printf '%8s s  total wall time\n' "$TOTAL"
if [ "$KEEP" -eq 1 ]; then echo "rootfs kept: chroot $ROOTFS /bin/bash  (mount proc/sys/dev first)"; fi
