#!/usr/bin/env bash
# Builds, once, the cached Debian 12 root that the e2e tests boot with systemd-nspawn (see docs/e2e.md).
# Idempotent: a cache hit returns in milliseconds; a changed recipe (packages, suite or the customize_root
# function below) rebuilds. The build goes into a temp dir next to the cache and is renamed into place only
# when complete, so an interrupted build is never used.
#
# Environment:
#   EDGE_E2E_ROOT_CACHE  where the root lives (default /var/cache/edge-reconciler/e2e-root)
#   EDGE_E2E_MIRROR      the Debian mirror (default: the one of the machine's apt sources)
set -euo pipefail

readonly SUITE=bookworm
# python3 runs the example apps (app releases); prometheus and its node exporter are the monitoring role's.
readonly PACKAGES=systemd,systemd-sysv,dbus,caddy,ufw,iptables,git,curl,ca-certificates,procps,logrotate,python3,prometheus,prometheus-node-exporter
readonly CACHE=${EDGE_E2E_ROOT_CACHE:-/var/cache/edge-reconciler/e2e-root}
# Inside the root; the helper does not read it, it runs this script before each boot.
readonly MARKER=.edge-e2e-recipe
readonly HOSTNAME_IN_ROOT=edge-e2e

log() { printf 'setup-root: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Units that fail or only cost time in a container without a console, network or hardware.
readonly MASKED_UNITS=(
  systemd-networkd-wait-online.service
  systemd-firstboot.service
  getty.target
  console-getty.service
  container-getty@.service
  getty@.service
  serial-getty@.service
  apt-daily.timer
  apt-daily-upgrade.timer
  dpkg-db-backup.timer
  e2scrub_all.timer
  e2scrub_reap.service
  fstrim.timer
  man-db.timer
  systemd-timesyncd.service
)

# Everything done to the root after debootstrap. Its text is part of the recipe hash: edit it and the root rebuilds.
customize_root() {
  local root=$1
  echo "$HOSTNAME_IN_ROOT" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$HOSTNAME_IN_ROOT" \
    >"$root/etc/hosts"
  # A set machine-id avoids first-boot logic (systemd-firstboot would prompt on the console).
  if [[ ! -s $root/etc/machine-id || $(cat "$root/etc/machine-id") == uninitialized ]]; then
    systemd-machine-id-setup --root="$root" >/dev/null
  fi
  local unit
  for unit in "${MASKED_UNITS[@]}"; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done
  # The journal in /run: nothing to flush on boot, nothing to write into the copy of the root.
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/edge-e2e.conf"
  # ufw active at boot, so that `ufw allow` changes the (container's own) iptables right away.
  sed -i 's/^ENABLED=.*/ENABLED=yes/' "$root/etc/ufw/ufw.conf"
  chroot "$root" systemctl enable caddy.service ufw.service >/dev/null 2>&1
  # Installed, not started: a test that wants Prometheus starts it, the other boots stay light.
  chroot "$root" systemctl disable prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true
  chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/log/"*.log "$root/var/cache/debconf/"*-old
}

# Prints the Debian mirror of the machine's apt sources (deb822 *.sources or one-line *.list).
detect_mirror() {
  if [[ -n ${EDGE_E2E_MIRROR:-} ]]; then
    echo "$EDGE_E2E_MIRROR"
    return
  fi
  local mirror
  # Emits "uri suite" pairs; the first plain suite (not -security/-updates/-backports) wins.
  mirror=$(
    {
      for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk '
          function flush() { if (types ~ /(^| )deb( |$)/) { n = split(uris, u, " "); m = split(suites, s, " ");
                             for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j] } types = uris = suites = "" }
          /^[ \t]*$/ { flush(); next }
          /^[ \t]*#/ { next }
          tolower($1) == "types:"  { $1 = ""; types = $0 }
          tolower($1) == "uris:"   { $1 = ""; uris = $0 }
          tolower($1) == "suites:" { $1 = ""; suites = $0 }
          END { flush() }' "$f"
      done
      for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb [options] uri suite components...
        sed -E -n 's/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+([^ \t]+).*/\2 \3/p' "$f"
      done
    } | awk '$2 ~ /^[a-z]+$/ { print $1; exit }'
  )
  echo "${mirror:-http://deb.debian.org/debian}"
}

ensure_host_packages() {
  local missing=()
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v nsenter >/dev/null || missing+=(util-linux)
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${missing[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
}

recipe() {
  printf 'suite=%s\npackages=%s\ncustomize=%s\n' "$SUITE" "$PACKAGES" \
    "$(declare -f customize_root | sha256sum | cut -c1-16) $(printf '%s\n' "${MASKED_UNITS[@]}" | sha256sum | cut -c1-16)"
}

# Unmounts what debootstrap may have left mounted (proc, sys) under a dir, then removes it.
remove_tree() {
  local dir=$1 target
  [[ -e $dir ]] || return 0
  while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -F -- "$dir/" | sort -r)
  rm -rf --one-file-system -- "$dir"
}

# While debootstrap runs (a minute or two, far longer on a loaded machine), prints its current step every 10 s,
# so a CI log never sits silent.
report_progress() {
  local pid=$1 logfile=$2 start=$3 step
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    kill -0 "$pid" 2>/dev/null || break
    step=$(grep -a '^I: ' "$logfile" 2>/dev/null | tail -n 1)
    log "debootstrap, $(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.0f", e - s }') s: ${step#I: }"
  done
}

BUILD_DIR=
BUILD_PID=
# On any exit before the rename: stop debootstrap, unmount and remove the half-built root.
abandon_build() {
  if [[ -n $BUILD_PID ]]; then
    kill "$BUILD_PID" 2>/dev/null || true
    wait "$BUILD_PID" 2>/dev/null || true
  fi
  if [[ -n $BUILD_DIR ]]; then
    remove_tree "$BUILD_DIR"
    rm -f "$BUILD_DIR.log"
  fi
}

main() {
  [[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot)"
  local start=$EPOCHREALTIME
  local want
  want=$(recipe)
  ensure_host_packages
  if [[ -f $CACHE/$MARKER && $(<"$CACHE/$MARKER") == "$want" ]]; then
    log "cache hit: $CACHE ($(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.2f", e - s }') s)"
    return
  fi
  mkdir -p "$(dirname "$CACHE")"
  # One build at a time; a second caller waits, then sees the cache hit.
  exec 9>"$CACHE.lock"
  flock 9
  if [[ -f $CACHE/$MARKER && $(<"$CACHE/$MARKER") == "$want" ]]; then
    log "cache hit after waiting for another build: $CACHE"
    return
  fi
  local stale
  for stale in "$CACHE".build.* "$CACHE".old.*; do
    [[ $stale == *.log ]] && rm -f "$stale" || remove_tree "$stale"
  done

  local mirror build
  mirror=$(detect_mirror)
  build=$(mktemp -d "$CACHE.build.XXXXXX")
  chmod 755 "$build" # mktemp makes it 0700; it becomes the container's /
  BUILD_DIR=$build
  trap abandon_build EXIT
  trap 'exit 130' INT TERM HUP
  log "building $SUITE root from $mirror into $build"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$build" "$mirror" >"$build.log" 2>&1 &
  BUILD_PID=$!
  report_progress "$BUILD_PID" "$build.log" "$start"
  if ! wait "$BUILD_PID"; then
    BUILD_PID=
    tail -n 30 "$build.log" >&2
    cp "$build.log" "$CACHE.failed.log"
    die "debootstrap failed (full log: $CACHE.failed.log)"
  fi
  BUILD_PID=
  rm -f "$build.log"
  customize_root "$build"
  echo "$want" >"$build/$MARKER"

  if [[ -e $CACHE ]]; then
    local old="$CACHE.old.$$"
    mv "$CACHE" "$old"
    mv "$build" "$CACHE"
    remove_tree "$old"
  else
    mv "$build" "$CACHE"
  fi
  trap - EXIT
  log "built $CACHE ($(du -sh "$CACHE" | cut -f1)) in $(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }') s"
}

main "$@"
