#!/usr/bin/env bash
# Installs the system packages packline's demo and tests need, only when missing.
# Idempotent: when everything is present it returns at once without touching apt.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# CJK font for recipient names and addresses on labels (B3).
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need+=(fonts-wqy-zenhei)
# Monochrome fallback for what the CJK font lacks (an emoji in a recipient's name).
[ -f /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf ] || need+=(fonts-symbola)
# pg_dump and pg_restore for central's backups of a PostgreSQL database (docs/backup.md).
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client)
# systemd-analyze and udevadm check the units and udev rules (tests/deploy).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v udevadm >/dev/null 2>&1 || need+=(udev)
# libusb for the ql+usb:// transport (pyusb loads it at run time).
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0' || need+=(libusb-1.0-0)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi

echo "packline: installing system packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
