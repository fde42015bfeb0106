#!/usr/bin/env python3
"""An HTTP proxy in front of a cloud API server (moto, Glance) for kiln's upload tests.

It forwards every request unchanged and logs it as one JSON line (method, path, status, and
the body of every request that is not a disk block), so that tests assert on what kiln sent.
Faults, for the tests of retries and resuming:
  --throttle N   answer the first N requests 503 with EC2's RequestLimitExceeded
  --drop-put N   on the Nth PUT, read half its body, then close the connection unanswered
  --drop-post N  the same for the Nth POST
  --refuse M:N   answer the Nth request of method M 400, a refusal no client retries (an
                 upload stopped mid-way, to be resumed by running the command again)
Usage: fault_proxy.py PORT UPSTREAM_URL LOG [--throttle N] [--drop-put N] [--drop-post N]
                      [--refuse METHOD:N]
"""
import argparse
import http.client
import http.server
import json
import threading
import urllib.parse

THROTTLED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
             b'<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>'
             b'</Error></Errors><RequestID>fault-proxy</RequestID></Response>')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("upstream")
    parser.add_argument("log")
    parser.add_argument("--throttle", type=int, default=0)
    parser.add_argument("--drop-put", type=int, default=0)
    parser.add_argument("--drop-post", type=int, default=0)
    parser.add_argument("--refuse", default="")
    args = parser.parse_args()
    upstream = urllib.parse.urlparse(args.upstream)
    lock = threading.Lock()
    counts = {"requests": 0}
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *unused):
            pass

        def record(self, status, body, fault=""):
            entry = {"method": self.command, "path": self.path, "status": status}
            if self.headers.get("Content-Type", "") != "application/octet-stream":
                entry["body"] = body.decode("utf-8", "replace")
            entry["headers"] = {k: v for k, v in self.headers.items()
                                if k.lower() not in ("authorization", "x-auth-token")}
            # Which access key signed it (an id, not a secret): "Credential=AKIA…/date/…".
            signature = self.headers.get("Authorization", "")
            if "Credential=" in signature:
                entry["credential"] = signature.split("Credential=", 1)[1].split("/", 1)[0]
            if fault:
                entry["fault"] = fault
            with lock:
                log.write(json.dumps(entry) + "\n")

        def forward(self):
            if self.path == "/fault-proxy/ready":  # the tests' readiness probe, not forwarded
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length", 0))
            # The test's readiness probes (moto's own /moto-api/) are not kiln's requests.
            probe = self.path.startswith("/moto-api/")
            with lock:
                counts["requests"] += 0 if probe else 1
                request_number = 0 if probe else counts["requests"]
                counts[self.command] = counts.get(self.command, 0) + 1
                number = counts[self.command]  # the request's number among its method's
            drop = {"PUT": args.drop_put, "POST": args.drop_post}.get(self.command, 0)
            if drop and number == drop:
                self.rfile.read(length // 2)
                self.record(0, b"", "dropped")
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = self.rfile.read(length) if length else b""
            if args.refuse and args.refuse == "%s:%d" % (self.command, number):
                self.record(400, b"", "refused")
                refusal = b"refused by the test's fault proxy"
                self.send_response(400)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(refusal)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(refusal)
                return
            if 0 < request_number <= args.throttle:
                self.record(503, body, "throttled")
                self.send_response(503)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(THROTTLED)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has no body
                    self.wfile.write(THROTTLED)
                return
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = upstream.netloc
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.record(answer.status, body)
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "connection", "transfer-encoding",
                                       "server", "date"):
                    self.send_header(key, value)
            # A HEAD answer's length is the resource's, not of the (absent) body.
            size = (answer.getheader("Content-Length") or 0) if self.command == "HEAD" else len(data)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
