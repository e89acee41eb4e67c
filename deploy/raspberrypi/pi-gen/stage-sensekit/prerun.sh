#!/bin/bash -e
# pi-gen runs a stage's prerun.sh first (it must be executable). This is stage2's own: start
# from a copy of the previous stage's root file system (copy_previous, pi-gen scripts/common)
# unless an earlier run of this stage left one.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
