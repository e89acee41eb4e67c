#!/usr/bin/env bash
# check-no-listeners.sh [--allow NAME]... [ROOT]
#
# Lists what, in the root file system ROOT (default /), would accept connections from the
# network or remote access once the system boots, and exits 1 when there is anything.
# It reads files only (unit files, their enablement symlinks, SysV rc links, inetd.conf), so it
# works on a pi-gen rootfs, a mounted image or a chroot without booting them; the pi-gen stage
# runs it on the image it builds (deploy/raspberrypi/pi-gen/stage-sensekit/01-no-listeners).
#
# Found and reported:
#   - enabled socket units with a network ListenStream/ListenDatagram/ListenSequentialPacket
#     (a port or an address; a path, a %-specifier path or an @abstract name is local);
#   - enabled services, system or user, whose ExecStart runs a known network daemon or
#     remote-access agent (the list below: it is a list, not a proof; extend it when you add
#     packages to the image);
#   - the same daemons enabled through SysV rc links, and active lines in inetd.conf.
# A unit masked (a symlink to /dev/null) is never reported. Units that are installed and
# neither enabled nor masked are printed as "note:" lines (D-Bus or another unit could still
# start them) but do not fail the check.
#
# --allow NAME   accept one unit (e.g. --allow ssh.service when you deliberately enable SSH).
#
# Exit: 0 nothing listens, 1 something would, 2 usage error.
set -euo pipefail

KNOWN_DAEMONS="sshd dropbear avahi-daemon rpcbind cupsd cups-browsed exim4 postfix master
ntpd chronyd dnsmasq named unbound mosquitto nginx apache2 lighttpd httpd smbd nmbd vsftpd
proftpd telnetd inetd xinetd in.telnetd xrdp wayvnc vncserver-x11-serviced x11vnc minidlnad
snmpd rsync dhcpd hostapd redis-server mysqld mariadbd node-red rpi-connectd rpi-connect
tailscaled zerotier-one cockpit-ws webmin"

ALLOWED=()
ROOT=/
while [ $# -gt 0 ]; do
	case "$1" in
		--allow)
			[ $# -ge 2 ] || { echo "usage: $0 [--allow UNIT]... [ROOT]" >&2; exit 2; }
			ALLOWED+=("$2")
			shift 2
			;;
		-h | --help)
			sed -n '2,26p' "$0"
			exit 0
			;;
		-*)
			echo "unknown option $1; usage: $0 [--allow UNIT]... [ROOT]" >&2
			exit 2
			;;
		*)
			ROOT="$1"
			shift
			;;
	esac
done
ROOT="${ROOT%/}"
if [ ! -d "${ROOT:-/}/etc" ]; then
	echo "$0: ${ROOT:-/} does not look like a root file system (no etc/)" >&2
	exit 2
fi

FINDINGS=0

is_allowed() {
	local unit="$1" allowed
	for allowed in "${ALLOWED[@]+"${ALLOWED[@]}"}"; do
		[ "$allowed" = "$unit" ] && return 0
	done
	return 1
}

report() {
	local unit="$1" reason="$2"
	if is_allowed "$unit"; then
		echo "allowed: $unit: $reason"
	else
		echo "LISTENER: $unit: $reason"
		FINDINGS=$((FINDINGS + 1))
	fi
}

# The unit search path below ROOT, highest priority first (systemd.unit(5)).
unit_dirs() {
	local scope="$1"
	if [ "$scope" = system ]; then
		printf '%s\n' "$ROOT/etc/systemd/system" "$ROOT/run/systemd/system" \
			"$ROOT/usr/local/lib/systemd/system" "$ROOT/usr/lib/systemd/system" "$ROOT/lib/systemd/system"
	else
		printf '%s\n' "$ROOT/etc/systemd/user" "$ROOT/usr/local/lib/systemd/user" \
			"$ROOT/usr/lib/systemd/user" "$ROOT/lib/systemd/user"
		local home
		for home in "$ROOT"/root "$ROOT"/home/*; do
			[ -d "$home/.config/systemd/user" ] && printf '%s\n' "$home/.config/systemd/user"
		done
	fi
	return 0
}

# The file defining UNIT (following symlinks inside ROOT), or nothing.
unit_file() {
	local scope="$1" unit="$2" dir path target
	while read -r dir; do
		path="$dir/$unit"
		[ -e "$path" ] || [ -L "$path" ] || continue
		while [ -L "$path" ]; do
			target="$(readlink "$path")"
			case "$target" in
				/dev/null) echo /dev/null; return 0 ;;
				/*) path="$ROOT$target" ;;
				*) path="$(dirname "$path")/$target" ;;
			esac
		done
		[ -f "$path" ] && { echo "$path"; return 0; }
	done < <(unit_dirs "$scope")
	# A template instance (foo@bar.service) is defined by foo@.service.
	case "$unit" in
		*@*.*) unit_file "$scope" "${unit%%@*}@.${unit##*.}" ;;
	esac
	return 0
}

is_masked() {
	local scope="$1" unit="$2" dir
	while read -r dir; do
		if [ -L "$dir/$unit" ] && [ "$(readlink "$dir/$unit")" = /dev/null ]; then
			return 0
		fi
	done < <(unit_dirs "$scope")
	return 1
}

# Every unit that some *.wants/ or *.requires/ link pulls in: what boots.
enabled_units() {
	local scope="$1" dir
	while read -r dir; do
		[ -d "$dir" ] || continue
		find "$dir" -mindepth 2 -maxdepth 2 \( -path '*.wants/*' -o -path '*.requires/*' \) \
			-printf '%f\n' 2>/dev/null
	done < <(unit_dirs "$scope") | sort -u
}

# Values of KEY= in a unit file (continuation lines are not used by the keys read here).
unit_values() {
	local file="$1" key="$2"
	sed -n "s/^[[:space:]]*${key}[[:space:]]*=[[:space:]]*//p" "$file"
}

is_network_address() {
	case "$1" in
		# a path, an abstract socket, or a path from a specifier (%t/..., %h/...)
		"" | /* | @* | %*) return 1 ;;
		*) return 0 ;;
	esac
}

# The daemon a service runs: basename of the first ExecStart command, prefixes dropped.
exec_names() {
	local file="$1" line word
	while read -r line; do
		for word in $line; do
			word="${word#[-@:+!]}"
			word="${word#[-@:+!]}"
			word="${word#[-@:+!]}"
			[ -n "$word" ] || continue
			basename "$word"
			break
		done
	done < <(unit_values "$file" ExecStart)
}

is_known_daemon() {
	local name="$1" known
	for known in $KNOWN_DAEMONS; do
		[ "$name" = "$known" ] && return 0
	done
	return 1
}

check_units() {
	local scope="$1" unit file value name
	while read -r unit; do
		[ -n "$unit" ] || continue
		is_masked "$scope" "$unit" && continue
		file="$(unit_file "$scope" "$unit")"
		if [ -z "$file" ] || [ "$file" = /dev/null ]; then continue; fi
		case "$unit" in
			*.socket)
				for key in ListenStream ListenDatagram ListenSequentialPacket; do
					while read -r value; do
						if is_network_address "$value"; then
							report "$unit" "$scope socket enabled, $key=$value"
						fi
					done < <(unit_values "$file" "$key")
				done
				;;
			*.service)
				while read -r name; do
					if is_known_daemon "$name"; then
						report "$unit" "$scope service enabled, runs $name"
					fi
				done < <(exec_names "$file")
				;;
		esac
	done < <(enabled_units "$scope")
}

# Installed daemons that are neither enabled nor masked: worth knowing, not a failure.
note_installed() {
	local scope="$1" dir file unit name
	while read -r dir; do
		[ -d "$dir" ] || continue
		for file in "$dir"/*.service; do
			if [ ! -f "$file" ] || [ -L "$file" ]; then continue; fi
			unit="$(basename "$file")"
			is_masked "$scope" "$unit" && continue
			enabled_units "$scope" | grep -qxF "$unit" && continue
			while read -r name; do
				if is_known_daemon "$name"; then
					echo "note: $unit is installed (runs $name), not enabled and not masked"
				fi
			done < <(exec_names "$file")
		done
	done < <(unit_dirs "$scope")
}

check_sysv() {
	local link name
	for link in "$ROOT"/etc/rc[2345].d/S*; do
		[ -e "$link" ] || continue
		name="$(basename "$link")"
		name="${name#S[0-9][0-9]}"
		# systemd ignores a SysV script when a native unit of the same name exists.
		[ -n "$(unit_file system "$name.service")" ] && continue
		if is_known_daemon "$name"; then
			report "$name (SysV)" "started by $(basename "$(dirname "$link")")/$(basename "$link")"
		fi
	done
}

check_inetd() {
	local conf="$ROOT/etc/inetd.conf" line
	[ -f "$conf" ] || return 0
	while read -r line; do
		case "$line" in
			"" | "#"*) ;;
			*) report inetd "inetd.conf serves: ${line%%[[:space:]]*}" ;;
		esac
	done <"$conf"
}

check_units system
check_units user
check_sysv
check_inetd
note_installed system

if [ "$FINDINGS" -gt 0 ]; then
	echo "$FINDINGS network listener(s) or remote-access agent(s) enabled in ${ROOT:-/}"
	exit 1
fi
echo "no network listener or remote-access agent enabled in ${ROOT:-/}"
