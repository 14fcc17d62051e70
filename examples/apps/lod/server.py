#!/usr/bin/env python3
"""The lod example app (Python 3 standard library only): what edge-reconciler deploys as an `app` release.

GET /healthz -> 200 "ok"; GET /version -> the text of the release's VERSION file; GET /build -> its BUILD_INFO
(written by build.sh); GET /env -> the non-secret settings it was started with and its pid, so a test can tell
which release and which generation runs. Listens on 127.0.0.1:$PORT (LOD_PORT, then 8080, when PORT is unset).
It never prints DATABASE_URL or SESSION_SECRET.
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A release that answers /healthz with 500 is one whose health check fails (the e2e suite commits such a release).
HEALTHY = True


def read_text(name):
    """The text of a file of this release, or an empty string when it is missing."""
    try:
        return (HERE / name).read_text()
    except OSError:
        return ""


SETTINGS = {
    "LOD_PORT": os.environ.get("LOD_PORT"),
    "LOD_WORKERS": os.environ.get("LOD_WORKERS"),
    "LOD_HOST": os.environ.get("LOD_HOST"),
    "pid": os.getpid(),
    "uid": os.getuid(),
}


class Handler(BaseHTTPRequestHandler):
    """Answers the four paths; anything else is 404."""

    def do_GET(self):
        if self.path == "/healthz":
            self.answer(200 if HEALTHY else 500, "ok" if HEALTHY else "unhealthy")
        elif self.path == "/version":
            self.answer(200, read_text("VERSION").strip())
        elif self.path == "/build":
            self.answer(200, read_text("BUILD_INFO"))
        elif self.path == "/env":
            self.answer(200, json.dumps(SETTINGS), "application/json")
        else:
            self.answer(404, "not found")

    def answer(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def main():
    port = int(os.environ.get("PORT") or os.environ.get("LOD_PORT") or "8080")
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"lod {read_text('VERSION').strip()} listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
