#!/usr/bin/env bash
# The quick start: installs what is needed, builds, then checks the bundled example desired-state, plans the
# lod-prod host into a sandbox root (.sandbox/root) with generated secrets (.sandbox/secrets), applies it there
# (activation recorded, not run) and shows the status. Touches nothing outside the checkout but apt packages.
set -euo pipefail
cd "$(dirname "$0")/.."

bash systemd/install-deps.sh
npm ci --no-audit --no-fund
npm run build

sandbox=.sandbox
mkdir -p "$sandbox/root" "$sandbox/secrets"
chmod 700 "$sandbox/secrets"
for name in LOD_DB_PASSWORD LOD_SESSION_SECRET MODEL_GATEWAY_API_KEY; do
  file="$sandbox/secrets/$name"
  if [ ! -f "$file" ]; then
    (umask 077; node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))' > "$file")
  fi
done

cli="node dist/reconciler/cli/main.js"
echo
echo "== edge-reconciler check --repo desired-state"
$cli check --repo desired-state --secrets-dir "$sandbox/secrets"
echo
echo "== edge-reconciler plan --repo desired-state --host lod-prod --root $sandbox/root"
status=0
$cli plan --repo desired-state --host lod-prod --root "$sandbox/root" --secrets-dir "$sandbox/secrets" || status=$?
# plan exits 2 when there are changes: into an empty sandbox root there always are.
[ "$status" -eq 0 ] || [ "$status" -eq 2 ]
echo
echo "== edge-reconciler apply --host lod-prod --root $sandbox/root --dry-activate"
$cli apply --repo desired-state --host lod-prod --root "$sandbox/root" --state-dir "$sandbox/state" \
  --secrets-dir "$sandbox/secrets" --dry-activate --quiet
echo
echo "== edge-reconciler status"
$cli status --state-dir "$sandbox/state"
