#!/usr/bin/env bash
# Installs everything sensekit needs, tests included, on Debian 12 / Raspberry Pi OS (Bookworm):
# Debian packages (apt-get), then a virtual environment in .venv with sensekit and its
# dependencies from PyPI. Safe to run again (it updates what is there).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# mosquitto: the broker the demo and the tests start privately on a loopback port.
# libportaudio2: microphone access (sounddevice). espeak-ng and sox: the tests synthesise
# their speech fixtures with them (no recorded voice is shipped). strace: the privacy test
# checks at the system-call level that nothing but the spool is written (tests/integration/test_egress.py).
# systemd (systemd-analyze), systemd-container (systemd-nspawn), debootstrap and shellcheck:
# the Raspberry Pi deployment tests score the unit files, run deploy/raspberrypi/install.sh in a
# clean Debian root and boot it under systemd, and lint the shell scripts. tmux: the test of
# `sensekit watch` drives the live terminal view in a real terminal.
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  python3 python3-venv python3-pip mosquitto mosquitto-clients libportaudio2 \
  espeak-ng sox strace systemd systemd-container debootstrap shellcheck tmux

# cloud-init's JSON schema, so tests/integration/test_provision_deploy.py validates
# deploy/raspberrypi/cloud-init/user-data.example offline. Unpacked, not installed: installing
# cloud-init would enable its boot services on this machine.
if [ ! -s build/cloud-init/schema-cloud-config-v1.json ]; then
  mkdir -p build/cloud-init
  (cd build/cloud-init && apt-get download cloud-init >/dev/null &&
    dpkg-deb --fsys-tarfile cloud-init_*.deb |
    tar -xO ./usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json \
      >schema-cloud-config-v1.json &&
    rm -f cloud-init_*.deb)
fi

# Dashboard recipes (tests/integration/test_dashboard_recipes.py): InfluxDB 1.x's server from
# Debian, unpacked, not installed (installing it would enable a database service at boot), and
# Node-RED with its InfluxDB nodes, TypeScript and Grafana's dashboard types from the pinned
# deploy/dashboards/package-lock.json, into build/dashboards/.
if [ ! -x build/influxdb/usr/bin/influxd ]; then
  mkdir -p build/influxdb
  (cd build/influxdb && apt-get download influxdb >/dev/null &&
    dpkg-deb -x influxdb_*.deb . && rm -f influxdb_*.deb)
fi
if ! command -v npm >/dev/null; then
  $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
if [ ! -d build/dashboards/node_modules ] ||
  ! cmp -s deploy/dashboards/package-lock.json build/dashboards/package-lock.json; then
  mkdir -p build/dashboards
  cp deploy/dashboards/package.json deploy/dashboards/package-lock.json build/dashboards/
  (cd build/dashboards && npm ci --no-audit --no-fund --loglevel=error)
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"sensekit needs Python 3.11 or newer, found {sys.version.split()[0]}")
PY
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/sensekit --version
echo "installed: run the tests with  .venv/bin/python -m pytest  and the demo with  .venv/bin/sensekit demo"
