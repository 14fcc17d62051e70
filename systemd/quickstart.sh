#!/usr/bin/env bash
# The quick start from a clone: installs what the agent and `npm test` need (apt packages, npm ci), builds, then
# checks the bundled example desired-state, plans the lod-prod host into a sandbox root (.sandbox/root) with
# generated secrets (.sandbox/secrets), applies it there (activation recorded, not run; the lod app's release is
# pulled from a local git repo of examples/apps/lod, built and switched live) and shows the status.
# Touches nothing outside the checkout but apt packages. Every command it runs is printed as you can run it again,
# from the checkout: `./edge-reconciler` is a small wrapper around `node dist/reconciler/cli/main.js`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash systemd/install-deps.sh --e2e
npm ci --no-audit --no-fund
npm run build

sandbox=.sandbox
mkdir -p "$sandbox/root" "$sandbox/secrets"
chmod 700 "$sandbox" "$sandbox/secrets"
for name in LOD_DB_PASSWORD LOD_SESSION_SECRET MODEL_GATEWAY_API_KEY; do
  file="$sandbox/secrets/$name"
  if [ ! -f "$file" ]; then
    (umask 077; node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))' > "$file")
  fi
done

# The example apps' code (examples/apps/) as git repos with a tag v1, as their developers would push them. apply
# maps the example's https://git.example.com/edge/ URLs to them (--app-instead-of; on a VM the host config's
# apps.insteadOf maps them to a forge or a mirror). Kept between runs (a second run changes nothing).
apps="$PWD/$sandbox/apps"
for app in lod model-gateway; do
  if [ ! -d "$apps/$app.git" ]; then
    rm -rf "$apps/$app-work"
    mkdir -p "$apps"
    cp -r "examples/apps/$app" "$apps/$app-work"
    git -C "$apps/$app-work" init -q -b main
    git -C "$apps/$app-work" add -A
    git -C "$apps/$app-work" -c user.name=quickstart -c user.email=quickstart@localhost commit -q -m "$app v1"
    git -C "$apps/$app-work" tag v1
    git init -q --bare -b main "$apps/$app.git"
    git -C "$apps/$app-work" push -q "$apps/$app.git" main --tags
  fi
done

# The command, callable from the checkout as ./edge-reconciler (git ignores it).
printf '#!/bin/sh\nexec node "$(dirname "$0")/dist/reconciler/cli/main.js" "$@"\n' > edge-reconciler
chmod 0755 edge-reconciler

# Prints a command, then runs it; `ok` lists the exit codes that are not failures (plan exits 2 on changes).
run() {
  local ok=$1 status=0
  shift
  printf '\n$ %s\n' "$*"
  "$@" || status=$?
  case " $ok " in *" $status "*) ;; *) exit "$status" ;; esac
}

run 0 ./edge-reconciler check --repo desired-state --secrets-dir "$sandbox/secrets"
run "0 2" ./edge-reconciler plan --repo desired-state --host lod-prod --root "$sandbox/root" --secrets-dir "$sandbox/secrets"
run 0 ./edge-reconciler apply --repo desired-state --host lod-prod --root "$sandbox/root" --state-dir "$sandbox/state" \
  --secrets-dir "$sandbox/secrets" --app-instead-of "https://git.example.com/edge/=$apps/" --dry-activate --quiet
run 0 ./edge-reconciler status --state-dir "$sandbox/state"
# The lod release the apply pulled, built and switched live: current → releases/<sha>, and what its build wrote.
run 0 ls -l "$sandbox/root/srv/apps/lod/current"
run 0 cat "$sandbox/root/srv/apps/lod/current/BUILD_INFO"
printf '\nRun the apply line again: nothing to do. Edit desired-state/ (commit it: uncommitted edits never go live),\n'
printf 'then run it again to see only that change applied. On a VM, use the .deb and bootstrap.sh (README).\n'
