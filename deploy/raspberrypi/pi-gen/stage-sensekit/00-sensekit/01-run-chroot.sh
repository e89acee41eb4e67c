#!/bin/bash -e
# Runs inside the image (arm64, through qemu-user on an x86 build host): pi-gen feeds this file
# to on_chroot on standard input (build.sh: on_chroot < NN-run-chroot.sh), so bash reads the
# script from stdin and every command below that could read stdin gets </dev/null; otherwise it
# would swallow the rest of the script.
# The same install.sh as on a Pi already in service: image and upgrade share one path.
set -euo pipefail
cd /root/sensekit-install
shopt -s nullglob
wheels=(wheel/sensekit-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
	echo "stage-sensekit: expected exactly one sensekit wheel in files/wheel, found ${#wheels[@]}" >&2
	exit 1
fi
# --no-apt: 00-packages-nr installed the system packages; --no-start: nothing runs in a chroot.
# install.sh runs `sensekit selftest` (every bundled model and the demo media through one
# window) on the image's own Python and aarch64 wheels before it switches to the release: an
# image that cannot run its models fails here, not in a shop. build.sh --no-selftest skips it.
options=(--wheel "${wheels[0]}" --wheelhouse wheelhouse --no-apt --no-start)
if [ -f SKIP_SELFTEST ]; then
	options+=(--no-selftest)
fi
bash src/deploy/raspberrypi/install.sh install "${options[@]}" </dev/null
/opt/sensekit/bin/sensekit --version </dev/null
cd /
rm -rf /root/sensekit-install
