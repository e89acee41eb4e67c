#!/usr/bin/env bash
# Builds the sensekit Raspberry Pi OS image with pi-gen (see ../README.md, "Building the image").
#
#   sudo deploy/raspberrypi/pi-gen/build.sh [options] PIGEN_DIR
#   deploy/raspberrypi/pi-gen/build.sh [options] --prepare-only DIR
#
# 1. the sensekit wheel (pip wheel of this checkout), unless --wheel FILE;
# 2. an aarch64 wheelhouse: every dependency as a manylinux aarch64 wheel for the image's
#    CPython (pip download --only-binary=:all:), pinned by ../constraints.txt when it exists,
#    unless --wheelhouse DIR;
# 3. copies stage-sensekit into the pi-gen checkout with wheel, wheelhouse and
#    deploy/raspberrypi + configs/ in 00-sensekit/files/, writes the pi-gen config, and runs
#    pi-gen's build.sh (as root) or, with --docker, its build-docker.sh.
# --prepare-only DIR does 1-2 and lays the stage and the config out in DIR without pi-gen.
#
# Options:
#   --wheel FILE          use this sensekit wheel
#   --wheelhouse DIR      use this folder of aarch64 wheels (no download)
#   --config FILE         pi-gen config to start from (default: config next to this script)
#   --docker              run pi-gen's build-docker.sh instead of build.sh
#   --no-selftest         do not run `sensekit selftest` inside the image while building
# Environment:
#   SENSEKIT_FIRST_USER_PASS  console password of the image's first user. Unset (the default):
#                             a random password nobody sees, and the account is locked.
#   PYTHON                    the build host's Python for pip (default python3)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-python3}"

usage() {
	sed -n '2,26p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

WHEEL=""
WHEELHOUSE=""
CONFIG="$HERE/config"
DOCKER=0
SELFTEST=1
PREPARE_ONLY=""
PIGEN_DIR=""
while [ $# -gt 0 ]; do
	case "$1" in
		--wheel) WHEEL="$(realpath "$2")"; shift 2 ;;
		--wheelhouse) WHEELHOUSE="$(realpath "$2")"; shift 2 ;;
		--config) CONFIG="$(realpath "$2")"; shift 2 ;;
		--docker) DOCKER=1; shift ;;
		--no-selftest) SELFTEST=0; shift ;;
		--prepare-only) PREPARE_ONLY="$(realpath -m "$2")"; shift 2 ;;
		-h | --help) usage ;;
		-*) echo "unknown option: $1" >&2; usage ;;
		*) PIGEN_DIR="$(realpath "$1")"; shift ;;
	esac
done
if [ -z "$PREPARE_ONLY" ] && [ -z "$PIGEN_DIR" ]; then
	echo "give the path of a pi-gen checkout (git clone -b arm64 https://github.com/RPi-Distro/pi-gen)" >&2
	usage
fi
if [ -n "$PIGEN_DIR" ] && [ ! -x "$PIGEN_DIR/build.sh" ]; then
	echo "$PIGEN_DIR is not a pi-gen checkout (no build.sh)" >&2
	exit 2
fi
if [ -n "$PIGEN_DIR" ] && [ "$DOCKER" = 0 ] && [ "$(id -u)" -ne 0 ]; then
	echo "pi-gen's build.sh must run as root (or use --docker)" >&2
	exit 2
fi

# The image's CPython follows its Raspberry Pi OS release.
RELEASE="$(bash -c 'source "$1" >/dev/null; echo "${RELEASE:-bookworm}"' _ "$CONFIG")"
case "$RELEASE" in
	bookworm) PY_VERSION=3.11 ;;
	trixie) PY_VERSION=3.13 ;;
	*) echo "unknown RELEASE=$RELEASE in $CONFIG: which Python does it ship?" >&2; exit 2 ;;
esac
PY_TAG="cp${PY_VERSION/./}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sensekit-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ -z "$WHEEL" ]; then
	echo "== building the sensekit wheel from $REPO"
	"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/wheel" "$REPO"
	WHEEL="$(find "$WORK/wheel" -name 'sensekit-*.whl' | head -n 1)"
fi
[ -f "$WHEEL" ] || { echo "no wheel: $WHEEL" >&2; exit 1; }

if [ -z "$WHEELHOUSE" ]; then
	echo "== downloading the aarch64 $PY_TAG wheelhouse"
	WHEELHOUSE="$WORK/wheelhouse"
	# pip matches --platform tags exactly: list every manylinux level up to the image's glibc
	# (2.36 on bookworm, 2.41 on trixie), and the legacy manylinux2014 name for 2.17.
	platforms=(--platform manylinux2014_aarch64)
	for minor in $(seq 17 41); do
		platforms+=(--platform "manylinux_2_${minor}_aarch64")
	done
	constraints=()
	if [ -f "$REPO/deploy/raspberrypi/constraints.txt" ]; then
		constraints=(--constraint "$REPO/deploy/raspberrypi/constraints.txt")
	fi
	"$PYTHON" -m pip download --quiet --dest "$WHEELHOUSE" --only-binary=:all: \
		--implementation cp --python-version "$PY_VERSION" --abi "$PY_TAG" \
		"${platforms[@]}" "${constraints[@]+"${constraints[@]}"}" "$WHEEL"
fi
[ -d "$WHEELHOUSE" ] || { echo "no wheelhouse: $WHEELHOUSE" >&2; exit 1; }

# Where the stage goes: inside the pi-gen checkout (build-docker.sh copies the checkout into
# its container, so a stage elsewhere would not be seen), or the --prepare-only folder.
TARGET="${PREPARE_ONLY:-$PIGEN_DIR}"
STAGE="$TARGET/stage-sensekit"
echo "== laying out $STAGE"
mkdir -p "$TARGET"
rm -rf "$STAGE"
cp -a "$HERE/stage-sensekit" "$STAGE"
FILES="$STAGE/00-sensekit/files"
mkdir -p "$FILES/wheel" "$FILES/wheelhouse" "$FILES/src/deploy"
cp "$WHEEL" "$FILES/wheel/"
# The wheelhouse without the sensekit wheel pip download copied into it.
find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' ! -name 'sensekit-*' -exec cp {} "$FILES/wheelhouse/" \;
tar -C "$REPO/deploy" --exclude='raspberrypi/pi-gen' -cf - raspberrypi | tar -C "$FILES/src/deploy" -xf -
cp -a "$REPO/configs" "$FILES/src/configs"
if [ "$SELFTEST" = 0 ]; then
	touch "$FILES/SKIP_SELFTEST"
fi

# The pi-gen config: ours, plus the first user's password (pi-gen refuses
# DISABLE_FIRST_BOOT_USER_RENAME=1 without one). The file is readable by root only.
PIGEN_CONFIG="$TARGET/config-sensekit"
install -m 0600 /dev/null "$PIGEN_CONFIG"
{
	cat "$CONFIG"
	echo
	echo "# added by deploy/raspberrypi/pi-gen/build.sh"
	if [ -n "${SENSEKIT_FIRST_USER_PASS:-}" ]; then
		printf 'FIRST_USER_PASS=%q\n' "$SENSEKIT_FIRST_USER_PASS"
		echo "export SENSEKIT_LOCK_FIRST_USER=0"
	else
		printf 'FIRST_USER_PASS=%q\n' "$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')"
		echo "export SENSEKIT_LOCK_FIRST_USER=1"
	fi
} >>"$PIGEN_CONFIG"

if [ -n "$PREPARE_ONLY" ]; then
	echo "== prepared $STAGE and $PIGEN_CONFIG ($(find "$FILES/wheelhouse" -name '*.whl' | wc -l) wheels)"
	exit 0
fi

# stage2 exports the Lite image by default; only ours is wanted (pi-gen README, SKIP_IMAGES).
touch "$PIGEN_DIR/stage2/SKIP_IMAGES"
cd "$PIGEN_DIR"
echo "== running pi-gen in $PIGEN_DIR"
status=0
if [ "$DOCKER" = 1 ]; then
	./build-docker.sh -c "$PIGEN_CONFIG" || status=$?
else
	./build.sh -c "$PIGEN_CONFIG" || status=$?
fi
rm -f "$PIGEN_CONFIG"
if [ "$status" -ne 0 ]; then
	echo "pi-gen failed ($status); its log: $PIGEN_DIR/work/*/build.log" >&2
	exit "$status"
fi
echo "== done: the image is in $PIGEN_DIR/deploy/ (name ending in -sensekit)"
