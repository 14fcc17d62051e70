#!/bin/sh
# The build step of the model-gateway example (its `build.command` in the desired state is `sh build.sh`), run in
# the release dir: byte-compile the sources (a syntax error fails the build) and record what was built in BUILD_INFO.
set -eu
python3 -m compileall -q .
printf 'app=model-gateway\nversion=%s\nbuilt=%s\npython=%s\n' "$(cat VERSION)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(python3 -V 2>&1)" > BUILD_INFO
echo "built model-gateway $(cat VERSION)"
