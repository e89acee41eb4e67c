#!/bin/bash -e
# Nothing on the image accepts connections from the network (README: "The image listens on
# nothing"). Runs inside the image, fed on stdin by pi-gen (see ../00-sensekit/01-run-chroot.sh).
set -euo pipefail
# Masked units cannot be started by anything: not by a later `systemctl enable`, not by
# D-Bus or socket activation. That matters because
#   - ssh: stage2 enables it only with ENABLE_SSH=1, but raspberrypi-sys-mods' sshswitch.service
#     enables and starts it at boot when a file named "ssh" appears on the boot partition, and
#     Raspberry Pi Imager's first-run settings can enable it;
#   - avahi-daemon (stage2 installs it) answers mDNS on UDP 5353 and can be D-Bus activated;
#   - rpcbind (pulled in by nfs-common) listens on port 111; stage2 disables only its service,
#     and its socket unit would start it on the first connection.
# Masking a unit that is not installed is harmless and keeps it off if it is installed later.
systemctl mask ssh.service ssh.socket sshswitch.service \
	avahi-daemon.service avahi-daemon.socket \
	rpcbind.service rpcbind.socket </dev/null
# Raspberry Pi Connect (stage2 installs rpi-connect-lite on recent pi-gen): remote shell access
# through raspberrypi.com. It listens on no port, but it is a way in; the kiosk does not use it.
for package in rpi-connect-lite rpi-connect; do
	if dpkg-query -W -f='${Status}' "$package" 2>/dev/null </dev/null | grep -q "install ok installed"; then
		apt-get purge -y "$package" </dev/null
	fi
done
