#!/usr/bin/env bash
# Installs edge-reconciler on a VM (Debian 12 / Ubuntu 24.04, Node 20): the system tools, the built agent under
# /opt/edge-reconciler, the command on PATH, a commented /etc/edge-reconciler/config.yaml, and the agent's service
# (webhooks + polling). Without a daemon, edge-reconciler-apply.timer polls with one-off applies instead.
#   sudo bash systemd/install.sh --repo git@github.com:acme/desired-state.git --ref release
set -euo pipefail
cd "$(dirname "$0")/.."
repo="" ref="release"
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo="$2"; shift 2 ;;
    --ref) ref="$2"; shift 2 ;;
    *) echo "usage: install.sh --repo URL [--ref release]" >&2; exit 2 ;;
  esac
done
[ -n "$repo" ] || { echo "install.sh: --repo is required" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

bash systemd/install-deps.sh
npm ci --no-audit --no-fund
npm run build
npm prune --omit=dev --no-audit --no-fund

install -d -m 0755 /opt/edge-reconciler
cp -a dist node_modules package.json systemd desired-state /opt/edge-reconciler/
ln -sf /opt/edge-reconciler/dist/reconciler/cli/main.js /usr/local/bin/edge-reconciler
chmod 0755 /opt/edge-reconciler/dist/reconciler/cli/main.js

install -d -m 0755 /etc/edge-reconciler
install -d -m 0700 /etc/edge-reconciler/secrets
[ -f /etc/edge-reconciler/config.yaml ] || edge-reconciler init --repo "$repo" --host "$(hostname -s)"
if [ ! -f /etc/edge-reconciler/apply.env ]; then
  printf 'EDGE_REPO=%s\nEDGE_REF=%s\n' "$repo" "$ref" > /etc/edge-reconciler/apply.env
  chmod 0600 /etc/edge-reconciler/apply.env
fi
install -m 0644 systemd/edge-reconciler.service systemd/edge-reconciler-apply.service systemd/edge-reconciler-apply.timer /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now edge-reconciler.service
echo "installed: review /etc/edge-reconciler/config.yaml (ref, webhook secret, trust), put this host's secrets"
echo "into /etc/edge-reconciler/secrets (one 0600 file per secret); watch: edge-reconciler status, journalctl -u edge-reconciler"
