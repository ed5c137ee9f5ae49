"""An HTTP/1.1 server that misbehaves on request, for the HTTP store's retry and timeout tests.

Usage: fault_server.py PORT   (listens on 127.0.0.1:PORT, standard library only)

GET /<mode>/<n>/<name> answers, for each path separately:
  ok/0/<name>         200 with the body "payload of <path>"
  fail503/<n>/<name>  503 for the first n requests, then 200 as above
  fail429/<n>/<name>  429 for the first n requests, then 200
  drop/<n>/<name>     closes the connection without an answer n times, then 200
  status/<code>/<name>  always <code> (with an S3-style XML error body)
  hang/0/<name>       reads the request and never answers
Range headers are ignored (a 200 carries the whole body), as some servers do.
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen = {}
seen_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) < 4 or not parts[2].isdigit():
            return self.reply(400, b"expected /<mode>/<n>/<name>")
        mode, n = parts[1], int(parts[2])
        with seen_lock:
            count = seen.get(self.path, 0)
            seen[self.path] = count + 1
        payload = ("payload of " + self.path).encode()
        if mode == "hang":
            time.sleep(3600)
        elif mode == "status":
            self.reply(n, b"<Error><Code>Injected</Code><Message>status %d</Message></Error>" % n)
        elif mode in ("fail503", "fail429") and count < n:
            self.reply(int(mode[4:]), b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>")
        elif mode == "drop" and count < n:
            self.close_connection = True
        elif mode in ("ok", "fail503", "fail429", "drop"):
            self.reply(200, payload)
        else:
            self.reply(400, b"unknown mode")

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
