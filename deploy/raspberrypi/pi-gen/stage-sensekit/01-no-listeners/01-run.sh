#!/bin/bash -e
# On the build host, last step of the stage.
# 1. The first user (FIRST_USER_NAME, needed by pi-gen) gets no usable password unless the
#    build asked for a console password (SENSEKIT_LOCK_FIRST_USER=0, set by build.sh when
#    SENSEKIT_FIRST_USER_PASS is given): nobody at the kiosk can log in on its console.
if [ "${SENSEKIT_LOCK_FIRST_USER:-1}" = "1" ]; then
	on_chroot <<EOC
usermod --lock "${FIRST_USER_NAME}"
EOC
fi
# 2. Fail the build when anything in the image would listen on the network.
../00-sensekit/files/src/deploy/raspberrypi/check-no-listeners.sh "${ROOTFS_DIR}"
