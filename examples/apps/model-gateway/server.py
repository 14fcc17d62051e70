#!/usr/bin/env python3
"""The model-gateway example app (Python 3 standard library only): an internal API that edge-reconciler deploys as
an `app` release.

GET /healthz -> 200 "ok"; GET /version -> the text of the release's VERSION file; GET /build -> its BUILD_INFO.
Listens on $BIND:$PORT (BIND defaults to 127.0.0.1, PORT to 9000); the desired state binds it to the host's
Tailscale address. It never prints GATEWAY_API_KEY.
"""
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


class Handler(BaseHTTPRequestHandler):
    """Answers the three paths; anything else is 404."""

    def do_GET(self):
        if self.path == "/healthz":
            self.answer(200 if HEALTHY else 500, "ok" if HEALTHY else "unhealthy")
        elif self.path == "/version":
            self.answer(200, read_text("VERSION").strip())
        elif self.path == "/build":
            self.answer(200, read_text("BUILD_INFO"))
        else:
            self.answer(404, "not found")

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def main():
    bind = os.environ.get("BIND") or "127.0.0.1"
    port = int(os.environ.get("PORT") or "9000")
    server = ThreadingHTTPServer((bind, port), Handler)
    print(f"model-gateway {read_text('VERSION').strip()} listening on {bind}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
