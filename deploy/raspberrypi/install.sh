#!/usr/bin/env bash
# sensekit on a Raspberry Pi that already runs Raspberry Pi OS (Bookworm or Trixie, 64-bit),
# and the one install path the image recipe (pi-gen stage) and the aarch64 proof reuse.
#
#   sudo deploy/raspberrypi/install.sh install   [--wheel FILE] [--wheelhouse DIR]
#                                                 [--constraints FILE] [--no-apt] [--no-start]
#                                                 [--no-selftest]
#   sudo deploy/raspberrypi/install.sh upgrade    (the same as install)
#   sudo deploy/raspberrypi/install.sh rollback   back to the previous release
#   sudo deploy/raspberrypi/install.sh status
#   sudo deploy/raspberrypi/install.sh uninstall  [--purge]
#
# Layout (see deploy/raspberrypi/README.md):
#   /opt/sensekit/releases/<version>-<hash>/   one virtual environment per release
#   /opt/sensekit/current -> releases/<...>     the release in use (switched atomically)
#   /opt/sensekit/bin/sensekit -> ../current/bin/sensekit   the CLI, whatever the release
#   /etc/sensekit/                              config and secrets (root:sensekit 0750)
#   /var/lib/sensekit/                          spool and site statistics (kept on upgrade)
#   /etc/systemd/system/sensekit*.service       the daemon and first-boot provisioning
#
# Idempotent: the release name is the hash of what gets installed (the wheels and the
# constraints), so running it again with the same input changes nothing; a new wheel builds a
# new release next to the old one, proves it with `sensekit selftest`, and only then switches.
# Works in a chroot (image builds): units are enabled offline and nothing is started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(cd "$HERE/../.." && pwd)"
PREFIX="${SENSEKIT_PREFIX:-/opt/sensekit}"
ETC_DIR=/etc/sensekit
STATE_DIR=/var/lib/sensekit
CACHE_DIR=/var/cache/sensekit
UNIT_DIR=/etc/systemd/system
SERVICE_USER=sensekit
UNITS=(sensekit.service sensekit-provision.service)
# procps: /bin/kill, which the unit's ExecReload= (SIGHUP: reload the config) runs.
APT_PACKAGES=(python3 python3-venv libportaudio2 ca-certificates procps)

say() { printf 'sensekit-install: %s\n' "$*"; }
die() {
  printf 'sensekit-install: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# systemd is PID 1 and running (not a chroot, not an image build).
systemd_running() {
  [ -d /run/systemd/system ] && ! systemd-detect-virt --quiet --chroot 2>/dev/null
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $*)"
}

install_apt_packages() {
  local missing=()
  local package
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages present: ${APT_PACKAGES[*]}"
    return
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_python() {
  python3 - <<'PY' || die "sensekit needs Python 3.11 or newer (Raspberry Pi OS Bookworm or later)"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
}

ensure_user() {
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    say "creating system user $SERVICE_USER"
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "sensekit daemon" "$SERVICE_USER"
  fi
  local group
  for group in video audio; do
    getent group "$group" >/dev/null || groupadd --system "$group"
  done
  usermod --append --groups video,audio "$SERVICE_USER"
}

# The wheel to install: given, found in the wheelhouse, or built from this checkout.
resolve_wheel() {
  if [ -n "$WHEEL" ]; then
    [ -f "$WHEEL" ] || die "no such wheel: $WHEEL"
    return
  fi
  if [ -n "$WHEELHOUSE" ]; then
    WHEEL="$(find "$WHEELHOUSE" -maxdepth 1 -name 'sensekit-*.whl' | sort -V | tail -n 1)"
    [ -n "$WHEEL" ] || die "no sensekit-*.whl in $WHEELHOUSE (give --wheel FILE)"
    return
  fi
  [ -f "$CHECKOUT/pyproject.toml" ] || die "not in a sensekit checkout: give --wheel FILE"
  BUILD_DIR="$(mktemp -d)"
  say "building the sensekit wheel from $CHECKOUT"
  python3 -m venv "$BUILD_DIR/venv"
  "$BUILD_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check build
  "$BUILD_DIR/venv/bin/python" -m build --wheel --outdir "$BUILD_DIR" "$CHECKOUT" >/dev/null
  WHEEL="$(find "$BUILD_DIR" -maxdepth 1 -name 'sensekit-*.whl' | head -n 1)"
  [ -n "$WHEEL" ] || die "building the wheel failed"
}

release_name() {
  local version digest
  version="$(basename "$WHEEL" | cut -d- -f2)"
  digest="$({
    sha256sum "$WHEEL" | cut -d' ' -f1
    if [ -n "$CONSTRAINTS" ]; then sha256sum "$CONSTRAINTS" | cut -d' ' -f1; fi
    python3 -c 'import sys; print(sys.version)'
  } | sha256sum | cut -c1-12)"
  printf '%s-%s' "$version" "$digest"
}

build_release() {
  local release="$1" dir="$PREFIX/releases/$1"
  if [ -f "$dir/.complete" ]; then
    say "release $release is already built"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$PREFIX/releases"
  say "creating release $release in $dir"
  python3 -m venv "$dir"
  local pip=("$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir)
  if [ -n "$WHEELHOUSE" ]; then pip+=(--no-index --find-links "$WHEELHOUSE"); fi
  if [ -n "$CONSTRAINTS" ]; then pip+=(--constraint "$CONSTRAINTS"); fi
  "${pip[@]}" "$WHEEL" || {
    rm -rf "$dir"
    die "pip could not install $WHEEL (the release in use, if any, is untouched)"
  }
  # Bytecode now, while the file system is writable: the service runs on ProtectSystem=strict.
  "$dir/bin/python" -m compileall -q "$dir/lib" >/dev/null || true
  touch "$dir/.complete"
}

selftest_release() {
  local release="$1"
  if [ "$SELFTEST" -eq 0 ]; then
    say "selftest skipped (--no-selftest)"
    return
  fi
  say "selftest of release $release (every model, one window of the demo media)"
  if ! "$PREFIX/releases/$release/bin/sensekit" selftest; then
    die "release $release failed its selftest; the release in use, if any, is untouched"
  fi
}

# Point current at a release with rename(2), so the switch is atomic. bin/ is a real folder
# holding only the CLI link: a link to the whole bin/ would give a `python` that cannot find its
# pyvenv.cfg (the release's interpreter is current/bin/python).
switch_to() {
  local release="$1"
  ln -sfn "releases/$release" "$PREFIX/current.new"
  mv -T "$PREFIX/current.new" "$PREFIX/current"
  if [ -L "$PREFIX/bin" ] || [ ! -d "$PREFIX/bin" ]; then
    rm -f "${PREFIX:?}/bin"
    mkdir -p "$PREFIX/bin"
  fi
  ln -sfn ../current/bin/sensekit "$PREFIX/bin/sensekit"
}

current_release() {
  if [ -L "$PREFIX/current" ]; then basename "$(readlink "$PREFIX/current")"; fi
}

# Keep the release in use and the one before it (for rollback), nothing older.
prune_releases() {
  local current previous
  current="$(current_release)"
  previous="$(cat "$PREFIX/previous" 2>/dev/null || true)"
  local dir name
  for dir in "$PREFIX"/releases/*/; do
    [ -d "$dir" ] || continue
    name="$(basename "$dir")"
    if [ "$name" != "$current" ] && [ "$name" != "$previous" ]; then
      say "removing old release $name"
      rm -rf "$dir"
    fi
  done
}

install_config_dirs() {
  install -d -o root -g "$SERVICE_USER" -m 0750 "$ETC_DIR"
  install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0700 "$STATE_DIR" "$CACHE_DIR"
  local example="$HERE/boot/sensekit/sensekit.yaml"
  [ -f "$example" ] || example="$CHECKOUT/configs/entrance.yaml"
  if [ -f "$example" ]; then
    install -o root -g "$SERVICE_USER" -m 0640 "$example" "$ETC_DIR/sensekit.yaml.example"
  fi
}

install_units() {
  local unit
  for unit in "${UNITS[@]}"; do
    [ -f "$HERE/systemd/$unit" ] || die "missing unit file $HERE/systemd/$unit"
    install -m 0644 "$HERE/systemd/$unit" "$UNIT_DIR/$unit"
  done
  if systemd_running; then systemctl daemon-reload; fi
  # Works offline too (a chroot or image build): it only creates the wants/ links.
  systemctl enable "${UNITS[@]}" >/dev/null 2>&1 || systemctl enable "${UNITS[@]}"
}

start_or_restart() {
  if [ "$START" -eq 0 ] || ! systemd_running; then
    say "not starting the service (--no-start, or no running systemd: an image build)"
    return
  fi
  if [ ! -f "$ETC_DIR/sensekit.yaml" ]; then
    say "no $ETC_DIR/sensekit.yaml yet: provision the device (boot partition bundle) or write"
    say "it from $ETC_DIR/sensekit.yaml.example, check it with"
    say "  /opt/sensekit/bin/sensekit check-config $ETC_DIR/sensekit.yaml"
    say "then: systemctl start sensekit"
    return
  fi
  say "restarting sensekit.service"
  systemctl restart sensekit.service
}

cmd_install() {
  need_root install
  if [ "$APT" -eq 1 ]; then install_apt_packages; fi
  check_python
  ensure_user
  resolve_wheel
  if [ -z "$CONSTRAINTS" ] && [ -f "$HERE/constraints.txt" ]; then
    CONSTRAINTS="$HERE/constraints.txt"
  fi
  local release before
  release="$(release_name)"
  before="$(current_release)"
  build_release "$release"
  if [ "$before" = "$release" ]; then
    say "release $release is already the one in use: nothing to switch"
  else
    selftest_release "$release"
    if [ -n "$before" ]; then printf '%s\n' "$before" >"$PREFIX/previous"; fi
    switch_to "$release"
    say "now using release $release${before:+ (previous: $before)}"
  fi
  prune_releases
  install_config_dirs
  install_units
  if [ "$before" != "$release" ]; then start_or_restart; fi
  say "installed: $("$PREFIX/bin/sensekit" --version)"
}

cmd_rollback() {
  need_root rollback
  local previous current
  previous="$(cat "$PREFIX/previous" 2>/dev/null || true)"
  current="$(current_release)"
  if [ -z "$previous" ] || [ ! -f "$PREFIX/releases/$previous/.complete" ]; then
    die "no previous release to roll back to"
  fi
  printf '%s\n' "$current" >"$PREFIX/previous"
  switch_to "$previous"
  say "rolled back from $current to $previous"
  start_or_restart
}

cmd_status() {
  local current
  current="$(current_release)"
  if [ -z "$current" ]; then
    say "not installed"
    return 1
  fi
  say "release in use: $current ($("$PREFIX/bin/sensekit" --version 2>&1))"
  say "previous release: $(cat "$PREFIX/previous" 2>/dev/null || echo none)"
  local unit
  for unit in "${UNITS[@]}"; do
    say "$unit: $(systemctl is-enabled "$unit" 2>/dev/null || echo not-installed)"
  done
  if [ -f "$ETC_DIR/sensekit.yaml" ]; then
    say "config: $ETC_DIR/sensekit.yaml"
  else
    say "config: none yet (not provisioned)"
  fi
}

cmd_uninstall() {
  need_root uninstall
  local unit
  if systemd_running; then
    systemctl disable --now "${UNITS[@]}" >/dev/null 2>&1 || true
  else
    systemctl disable "${UNITS[@]}" >/dev/null 2>&1 || true
  fi
  for unit in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$unit"; done
  if systemd_running; then systemctl daemon-reload; fi
  rm -rf "$PREFIX"
  say "removed the program ($PREFIX) and its units"
  if [ "$PURGE" -eq 1 ]; then
    rm -rf "$ETC_DIR" "$STATE_DIR" "$CACHE_DIR"
    if getent passwd "$SERVICE_USER" >/dev/null; then userdel "$SERVICE_USER"; fi
    if getent group "$SERVICE_USER" >/dev/null; then groupdel "$SERVICE_USER"; fi
    say "purged the config ($ETC_DIR), the spool ($STATE_DIR), the cache and the user"
  else
    say "kept the config ($ETC_DIR) and the spool ($STATE_DIR): --purge removes them"
  fi
}

WHEEL=""
WHEELHOUSE=""
CONSTRAINTS=""
APT=1
START=1
SELFTEST=1
PURGE=0
BUILD_DIR=""
trap '[ -z "$BUILD_DIR" ] || rm -rf "$BUILD_DIR"' EXIT

[ $# -ge 1 ] || usage
COMMAND="$1"
shift
while [ $# -gt 0 ]; do
  case "$1" in
  --wheel) WHEEL="$(realpath "${2:?--wheel needs a file}")" && shift ;;
  --wheelhouse) WHEELHOUSE="$(realpath "${2:?--wheelhouse needs a directory}")" && shift ;;
  --constraints) CONSTRAINTS="$(realpath "${2:?--constraints needs a file}")" && shift ;;
  --no-apt) APT=0 ;;
  --no-start) START=0 ;;
  --no-selftest) SELFTEST=0 ;;
  --purge) PURGE=1 ;;
  -h | --help) usage 0 ;;
  *) die "unknown option $1 (see $0 --help)" ;;
  esac
  shift
done

case "$COMMAND" in
install | upgrade) cmd_install ;;
rollback) cmd_rollback ;;
status) cmd_status ;;
uninstall) cmd_uninstall ;;
-h | --help | help) usage 0 ;;
*) die "unknown command $COMMAND (install, upgrade, rollback, status, uninstall)" ;;
esac
