#!/usr/bin/env bash
# Bootstraps a fresh Ubuntu 24.04 or Debian 12 VM for edge-reconciler, idempotently (a second run changes nothing):
#   1. the baseline packages (git, ufw, logrotate, curl, ca-certificates; the ssh client for ssh repos; caddy with
#      --caddy),
#   2. the directory standard: /srv/apps (apps), /srv/backups (0750), /srv/data (the app data root),
#   3. a persistent journal (/var/log/journal),
#   4. optionally Tailscale's apt source and package (--tailscale; needs the VM's network),
#   5. the edge-reconciler .deb (the executable: no Node, npm or build on the VM),
#   6. the host config (`edge-reconciler init`) for --repo with --ref or --tag-pattern, and --host (never guessed),
#   7. the secrets the host needs (`edge-reconciler secrets list`) and the next commands. With --start, the agent is
#      enabled and started once `edge-reconciler doctor` passes; otherwise it stays off until you start it.
#
# --webhook creates a random webhook secret (/etc/edge-reconciler/webhook-secret, 0600) and enables push webhooks.
#
#   sudo bash bootstrap.sh --deb ./edge-reconciler_0.1.0_amd64.deb --repo git@github.com:acme/desired-state.git \
#     --ref release --host lod-prod [--path desired-state] [--webhook] [--tailscale] [--caddy] [--start]
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: bootstrap.sh --deb FILE --repo URL (--ref BRANCH | --tag-pattern GLOB) --host NAME
                    [--path DIR] [--webhook] [--tailscale] [--caddy] [--start] [--force-config]
USAGE
  exit 2
}

deb="" repo="" ref="" tag_pattern="" host="" path="" webhook=no tailscale=no caddy=no start=no force_config=no
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=${2:?}; shift 2 ;;
    --repo) repo=${2:?}; shift 2 ;;
    --ref) ref=${2:?}; shift 2 ;;
    --tag-pattern) tag_pattern=${2:?}; shift 2 ;;
    --host) host=${2:?}; shift 2 ;;
    --path) path=${2:?}; shift 2 ;;
    --webhook) webhook=yes; shift ;;
    --tailscale) tailscale=yes; shift ;;
    --caddy) caddy=yes; shift ;;
    --start) start=yes; shift ;;
    --force-config) force_config=yes; shift ;;
    -h | --help) usage ;;
    *) echo "bootstrap: unknown argument $1" >&2; usage ;;
  esac
done

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash bootstrap.sh ...)"
[ -n "$repo" ] || die "--repo is required: the desired-state repo (ssh or https URL, or an absolute path)"
[ -n "$host" ] || die "--host is required: this host's name in the repo (hosts/<name>.yaml); it is never guessed"
[ -n "$ref" ] && [ -n "$tag_pattern" ] && die "--ref and --tag-pattern exclude each other: follow a branch or tags"
[ -n "$ref" ] || [ -n "$tag_pattern" ] || ref=release
if [ -z "$deb" ]; then
  # Beside this script (a release download) or as built in a clone (npm run deb).
  here=$(cd "$(dirname "$0")" && pwd)
  deb=$(ls -1 "$here"/edge-reconciler_*_amd64.deb "$here"/../dist-bin/edge-reconciler_*_amd64.deb 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$deb" ] || die "--deb is required: the edge-reconciler_<version>_amd64.deb to install"
fi
[ -f "$deb" ] || die "no such package: $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
  ubuntu:24.04 | debian:12) ;;
  *) say "warning: tested on Ubuntu 24.04 and Debian 12; this is ${PRETTY_NAME:-unknown}" ;;
esac

export DEBIAN_FRONTEND=noninteractive
apt_updated=no
apt_install() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = no ]; then
    apt-get update -q >/dev/null
    apt_updated=yes
  fi
  say "installing ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. Baseline packages: what the agent runs. The ssh client only for an ssh repo; gpg only if you require GPG
# signatures (apt install gnupg); Caddy only where asked: installing it starts a web server on :80.
baseline=(ca-certificates curl git logrotate ufw)
case "$repo" in
  ssh://* | *@*:*) baseline+=(openssh-client) ;;
esac
[ "$caddy" = yes ] && baseline+=(caddy)
apt_install "${baseline[@]}"

# 2. The directory standard.
ensure_dir() { # mode path
  if [ ! -d "$2" ]; then
    install -d -m "$1" "$2"
    say "created $2 (mode $1)"
  elif [ "$(stat -c %a "$2")" != "${1#0}" ]; then
    chmod "$1" "$2"
    say "set $2 to mode $1"
  fi
}
ensure_dir 0755 /srv/apps
ensure_dir 0750 /srv/backups
ensure_dir 0755 /srv/data

# 3. A persistent journal: the agent's runs and rollbacks survive a reboot.
journald_dropin=/etc/systemd/journald.conf.d/00-edge-bootstrap.conf
journald_text=$'# Written by edge-reconciler bootstrap.sh: keep the journal across reboots.\n[Journal]\nStorage=persistent\n'
if [ ! -f "$journald_dropin" ] || [ "$(cat "$journald_dropin")"$'\n' != "$journald_text" ]; then
  install -d -m 0755 "$(dirname "$journald_dropin")"
  printf '%s' "$journald_text" >"$journald_dropin"
  ensure_dir 2755 /var/log/journal
  systemd-tmpfiles --create --prefix /var/log/journal >/dev/null 2>&1 || true
  systemctl restart systemd-journald.service
  say "journald: persistent storage in /var/log/journal"
fi

# 4. Tailscale's apt source (the mesh the hosts talk over); `tailscale up` is yours to run.
if [ "$tailscale" = yes ]; then
  keyring=/usr/share/keyrings/tailscale-archive-keyring.gpg
  list=/etc/apt/sources.list.d/tailscale.list
  if [ ! -f "$list" ]; then
    curl -fsSL "https://pkgs.tailscale.com/stable/${ID}/${VERSION_CODENAME}.noarmor.gpg" -o "$keyring"
    curl -fsSL "https://pkgs.tailscale.com/stable/${ID}/${VERSION_CODENAME}.tailscale-keyring.list" -o "$list"
    apt_updated=no
    say "added Tailscale's apt source"
  fi
  apt_install tailscale
fi

# 5. The package: installed when missing or of another version.
want=$(dpkg-deb -f "$deb" Version)
have=$(dpkg-query -W -f='${Version}' edge-reconciler 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  say "installing edge-reconciler $want${have:+ (was $have)}"
  apt-get install -y -q --no-install-recommends "$deb" >/dev/null
fi

# 6. The host config.
config=/etc/edge-reconciler/config.yaml
init_args=(--repo "$repo" --host "$host")
[ -n "$ref" ] && init_args+=(--ref "$ref")
[ -n "$tag_pattern" ] && init_args+=(--tag-pattern "$tag_pattern")
[ -n "$path" ] && init_args+=(--path "$path")
if [ "$webhook" = yes ]; then
  webhook_secret=/etc/edge-reconciler/webhook-secret
  if [ ! -s "$webhook_secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$webhook_secret" && echo >>"$webhook_secret")
    say "wrote a random webhook secret to $webhook_secret (give it to the forge's webhook)"
  fi
  init_args+=(--webhook-secret-file "$webhook_secret")
fi
if [ ! -f "$config" ] || [ "$force_config" = yes ]; then
  force=()
  [ "$force_config" = yes ] && force=(--force)
  edge-reconciler init "${init_args[@]}" "${force[@]}" --quiet
  say "wrote $config for host $host"
else
  # Never overwrite the operator's edits; say when the flags and the file disagree.
  edge-reconciler init "${init_args[@]}" --check || say "keeping $config as it is (--force-config rewrites it)"
fi

# The timer's one-off applies (edge-reconciler-apply.timer) read the same source.
apply_env=/etc/edge-reconciler/apply.env
apply_text="EDGE_REPO=$repo"$'\n'"EDGE_REF=${ref:-}"$'\n'"EDGE_HOST=$host"
if [ ! -f "$apply_env" ] || [ "$(cat "$apply_env")" != "$apply_text" ]; then
  (umask 077 && printf '%s\n' "$apply_text" >"$apply_env")
fi

# 7. Secrets, readiness and what comes next.
echo
edge-reconciler secrets list || say "could not list the secrets yet (see above); run: edge-reconciler secrets list"
echo
if [ "$start" = yes ]; then
  if edge-reconciler doctor; then
    systemctl enable --now edge-reconciler.service >/dev/null
    say "edge-reconciler.service enabled and started; watch: edge-reconciler status"
  else
    die "doctor found problems (above): fix them, then systemctl enable --now edge-reconciler.service"
  fi
elif ! systemctl is-enabled --quiet edge-reconciler.service 2>/dev/null; then
  cat <<NEXT
next:
  edge-reconciler secrets set NAME < value-file     # for each missing secret above (value from stdin, never argv)
  edge-reconciler doctor                            # config, repo, secrets, tools, listen address, firewall
  systemctl enable --now edge-reconciler.service    # the agent: webhooks, polling, drift healing
  edge-reconciler status
NEXT
fi
