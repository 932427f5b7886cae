#!/usr/bin/env python3
"""A small service with storage, for scenarios/syscall-storage-eio.json.

GET /write appends a line to DATA/ledger.log and fsyncs it, retrying twice
(50 ms apart) when the disk fails; if every try fails it answers 503 with the
error and logs it to stderr, and goes on serving: a disk error must never take
the service down. GET /healthz answers 200. After --serve-for seconds it stops
and exits 0.

usage: ledger-service.py --port P --data DIR [--serve-for SECONDS]
"""
import argparse
import http.server
import os
import sys
import threading
import time


def append(path, line):
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self.answer(200, "ok\n")
        elif self.path == "/write":
            self.write()
        else:
            self.answer(404, "not found\n")

    def write(self):
        error = None
        for attempt in range(3):
            try:
                append(self.server.ledger, "entry %f\n" % time.time())
                self.answer(200, "stored\n")
                return
            except OSError as e:
                error = e
                print("ledger: write failed (try %d of 3): %s" % (attempt + 1, e.strerror),
                      file=sys.stderr, flush=True)
                time.sleep(0.05)
        self.answer(503, "storage error: %s\n" % error.strerror)

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--serve-for", type=float, default=10.0)
    a = ap.parse_args()
    os.makedirs(a.data, exist_ok=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.ledger = os.path.join(a.data, "ledger.log")
    threading.Timer(a.serve_for, srv.shutdown).start()
    print("ledger: serving on 127.0.0.1:%d, storage in %s" % (a.port, a.data), flush=True)
    srv.serve_forever()
    srv.server_close()
    print("ledger: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
