#!/usr/bin/env bash
# Builds dist-bin/edge-reconciler_<version>_amd64.deb with dpkg-deb, offline: the self-contained executable (built
# afresh, as `npm run dist` does), the agent's units, the config schema, the docs and the example desired-state.
#   bash packaging/build-deb.sh        (npm run deb)
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
# Always from the sources as they are: a package must never carry a stale executable.
node packaging/build-executable.mjs

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
doc=$stage/usr/share/doc/edge-reconciler
share=$stage/usr/share/edge-reconciler

install -D -m 0755 dist-bin/edge-reconciler "$stage/usr/bin/edge-reconciler"
for unit in edge-reconciler.service edge-reconciler-apply.service edge-reconciler-apply.timer; do
  install -D -m 0644 "systemd/$unit" "$stage/usr/lib/systemd/system/$unit"
done
install -D -m 0644 systemd/config.schema.json "$share/config.schema.json"
install -D -m 0755 systemd/bootstrap.sh "$share/bootstrap.sh"
mkdir -p "$share/desired-state"
cp -r desired-state/. "$share/desired-state/"
install -D -m 0644 README.md "$doc/README.md"
for page in docs/*.md; do install -m 0644 "$page" "$doc/"; done
install -m 0644 packaging/debian/copyright "$doc/copyright"
install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/edge-reconciler"
# The manual page: the command's own --help, so it never drifts from the code.
mkdir -p "$stage/usr/share/man/man8"
{
  printf '.TH EDGE-RECONCILER 8 "" "edge-reconciler %s" "System Administration"\n' "$version"
  printf '.SH NAME\nedge-reconciler \\- keep a host on the desired state in a git repository\n'
  printf '.SH SYNOPSIS\n.B edge-reconciler\n.I command\n.RI [ options ]\n.SH DESCRIPTION\n.nf\n'
  dist-bin/edge-reconciler --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./'
  printf '.fi\n.SH FILES\n/etc/edge-reconciler/config.yaml, /etc/edge-reconciler/secrets/, /var/lib/edge-reconciler/\n'
  printf '.SH SEE ALSO\n/usr/share/doc/edge-reconciler/README.md, \\fBsystemd.exec\\fR(5), \\fBufw\\fR(8)\n'
} | gzip -9n >"$stage/usr/share/man/man8/edge-reconciler.8.gz"
chmod 0644 "$stage/usr/share/man/man8/edge-reconciler.8.gz"
# The npm packages inside the executable, for the copyright file's pointer.
npm ls --omit=dev --all --parseable --long 2>/dev/null | awk -F: 'NR > 1 { print $2 }' | sort -u >"$doc/dependencies.txt"
chmod 0644 "$doc/dependencies.txt"
printf 'edge-reconciler (%s) unstable; urgency=medium\n\n  * Release %s: see README.md.\n\n -- edge-reconciler maintainers <maintainers@edge-reconciler.invalid>  %s\n' \
  "$version" "$version" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
  gzip -9n >"$doc/changelog.gz"
find "$stage" -type d -exec chmod 0755 {} +
find "$share/desired-state" "$doc" -type f -exec chmod 0644 {} +

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" packaging/debian/control.in >"$stage/DEBIAN/control"
for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"; done
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k 2 >DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control"

out=dist-bin/edge-reconciler_${version}_amd64.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out" >/dev/null
echo "built $out ($(du -h "$out" | cut -f1))"
