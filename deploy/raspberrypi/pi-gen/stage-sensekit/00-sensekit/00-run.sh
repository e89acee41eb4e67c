#!/bin/bash -e
# pi-gen runs NN-run.sh on the build host, from this folder, with ROOTFS_DIR set to the root of
# the image being built; it must be executable, or pi-gen skips it without a word.
# files/ is filled by deploy/raspberrypi/pi-gen/build.sh: wheel/ (sensekit), wheelhouse/ (every
# dependency, aarch64), src/ (deploy/raspberrypi and configs/ from the checkout, so install.sh
# finds its units and constraints where it expects them).
if [ ! -f files/src/deploy/raspberrypi/install.sh ] || [ ! -d files/wheelhouse ]; then
	echo "stage-sensekit: files/ is not prepared; build with deploy/raspberrypi/pi-gen/build.sh" >&2
	exit 1
fi
rm -rf "${ROOTFS_DIR}/root/sensekit-install"
install -d -m 0700 "${ROOTFS_DIR}/root/sensekit-install"
cp -a files/. "${ROOTFS_DIR}/root/sensekit-install/"
