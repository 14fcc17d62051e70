#!/bin/sh
# pre-apply hook: refuses to apply a revision when a filesystem (default: /) has less than
# MIN_FREE_PERCENT (default: 10) per cent free. Copy it into roles/<role>/hooks/ of the desired-state repo,
# `git update-index --chmod=+x` it, and declare it in role.yaml:
#     hooks:
#       pre-apply: hooks/pre-apply-disk-space.sh
#
# Environment contract (everything a hook gets; nothing else of the agent's environment is passed):
#   EDGE_PHASE       pre-apply | post-apply | on-failure | on-rollback
#   EDGE_REVISION    the commit being applied (full sha)
#   EDGE_GENERATION  the generation number this apply will create
#   EDGE_HOST        this host's name (hosts/<name>.yaml)
#   EDGE_ROLE        the role that declared the hook
#   EDGE_RESULT      empty before the apply; success | failure | rolled-back afterwards
#   EDGE_ERROR       empty, or the error that failed the run (redacted, one message)
#   PATH             /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Working directory: the role folder in the exported tree. Exit non-zero (or run past the timeout) to refuse
# the apply; the last lines of the output end up in the error and the status document.
set -eu

: "${MIN_FREE_PERCENT:=10}"
: "${DISK_PATH:=/}"

# POSIX df: the fifth column is "Capacity", the per cent used.
used=$(df -P "$DISK_PATH" | awk 'NR == 2 { sub(/%$/, "", $5); print $5 }')
if [ -z "$used" ]; then
  echo "cannot read the usage of $DISK_PATH" >&2
  exit 1
fi
free=$((100 - used))

if [ "$free" -lt "$MIN_FREE_PERCENT" ]; then
  echo "refusing to apply ${EDGE_REVISION:-?} on ${EDGE_HOST:-?}: $DISK_PATH has ${free}% free, less than ${MIN_FREE_PERCENT}%" >&2
  exit 1
fi
echo "$DISK_PATH has ${free}% free (at least ${MIN_FREE_PERCENT}% needed)"
