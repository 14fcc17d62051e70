#!/bin/sh
# post-apply hook: logs the revision that was applied, to syslog/journald through `logger` when it can, and to
# its own output (which the agent keeps in its log) in any case. Copy it into roles/<role>/hooks/ of the
# desired-state repo, make it executable, and declare it in role.yaml with the network a notification needs
# (hooks run as nobody, read-only but for their scratch dir, and without network unless they declare it):
#     hooks:
#       post-apply:
#         script: hooks/post-apply-notify.sh
#         network: true
# To notify a chat or a pager as well, add a line such as
#     curl -fsS -m 10 --data-urlencode "text=$message" https://chat.example.com/hook || true
#
# Environment contract (everything a hook gets; nothing else of the agent's environment is passed):
#   EDGE_PHASE       pre-apply | post-apply | on-failure | on-rollback
#   EDGE_REVISION    the commit that was applied (full sha)
#   EDGE_GENERATION  the generation number it became
#   EDGE_HOST        this host's name (hosts/<name>.yaml)
#   EDGE_ROLE        the role that declared the hook
#   EDGE_RESULT      success | failure | rolled-back (empty in pre-apply)
#   EDGE_ERROR       empty, or the error that failed the run (redacted, one message)
#   PATH             /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
#   HOME, TMPDIR     the hook's scratch dir, its only writable path
# A failing post-apply hook is reported, never fatal: the apply has already happened.
set -u

message="applied ${EDGE_REVISION:-unknown} as generation ${EDGE_GENERATION:-?} on ${EDGE_HOST:-?} (role ${EDGE_ROLE:-?}, result ${EDGE_RESULT:-success})"
echo "$message"
if command -v logger >/dev/null 2>&1; then
  logger -t edge-reconciler-hook -- "$message" 2>/dev/null || true
fi
exit 0
