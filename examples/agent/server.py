"""A small agent server in the shape jockey deploys: `server.py` on port 8080 with `/health`,
agent "providers" in `providers/`. Plain standard library, so it needs no dependencies.

    GET  /health            -> 200 {"status": "ok"}
    GET  /providers         -> the available providers
    POST /run {"provider": "echo", "input": "hi"} -> the provider's answer
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from providers import PROVIDERS

PORT = int(os.environ.get("PORT", "8080"))


class Handler(BaseHTTPRequestHandler):
    server_version = "jockey-example-agent/1"

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path == "/providers":
            self._send(200, {"providers": sorted(PROVIDERS)})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self):
        if self.path != "/run":
            self._send(404, {"error": f"no route {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            provider = PROVIDERS[request.get("provider", "echo")]
        except (ValueError, KeyError) as err:
            self._send(400, {"error": f"bad request: {err}"})
            return
        self._send(200, {"output": provider.run(str(request.get("input", "")))})

    def log_message(self, fmt, *args):
        # One line per request on stdout, where `kubectl jockey logs` reads it.
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    # Kubernetes stops pods with SIGTERM (after the preStop pause): finish in-flight requests.
    # shutdown() waits for serve_forever(), so it must run on another thread than the handler.
    signal.signal(
        signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start()
    )
    print(f"agent listening on :{PORT} with providers {sorted(PROVIDERS)}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
