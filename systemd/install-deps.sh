#!/usr/bin/env bash
# Installs the system tools edge-reconciler validates and applies with (Debian 12 / Ubuntu 24.04):
# caddy (validate), systemd-analyze (in systemd), ufw, logrotate (validates logrotate files), git, and gpg and
# ssh for signed commits and deploy keys, and util-linux (flock: the state dir's lock; essential, so always there).
# With --e2e also what the tests use: systemd-container (systemd-nspawn), debootstrap and iproute2 to boot and wire
# a systemd, strace (the fsync test of the state dir), chromium (the fleet page's browser test) and prometheus
# (promtool: the alert rules' unit tests).
set -euo pipefail
packages=(caddy systemd ufw logrotate git gnupg openssh-client util-linux)
[ "${1:-}" = "--e2e" ] && packages+=(systemd-container debootstrap iproute2 strace chromium prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${packages[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
