#!/usr/bin/env python3
"""Real alert receivers for the integration tests, on 127.0.0.1 only.

    receivers.py http DIR   -- an HTTP server; each POST is saved as DIR/<n>.json
                               (on the port in DIR/fixed-port, if that file exists)
    receivers.py smtp DIR   -- an SMTP server (the standard library's); each mail is saved as DIR/<n>.eml

The chosen port is written to DIR/port once the server listens.
"""
import json
import os
import sys
import threading
import warnings


def save(directory, suffix, content):
    with save.lock:
        save.count += 1
        path = os.path.join(directory, "%04d%s" % (save.count, suffix))
    with open(path + ".tmp", "w") as f:
        f.write(content)
    os.rename(path + ".tmp", path)


save.lock = threading.Lock()
save.count = 0


def announce(directory, port):
    with open(os.path.join(directory, "port.tmp"), "w") as f:
        f.write(str(port))
    os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))


def fixed_port(directory):
    """The port named in DIR/fixed-port, or 0 for any free port."""
    try:
        with open(os.path.join(directory, "fixed-port")) as f:
            return int(f.read())
    except FileNotFoundError:
        return 0


def serve_http(directory):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8"),
            }
            save(directory, ".json", json.dumps(record))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", fixed_port(directory)), Handler)
    announce(directory, server.server_address[1])
    server.serve_forever()


def serve_smtp(directory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
        import smtpd

    class Server(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            save(directory, ".eml", "X-Envelope-From: %s\nX-Envelope-To: %s\n%s" % (mailfrom, ",".join(rcpttos), data))

    server = Server(("127.0.0.1", 0), None, decode_data=False)
    announce(directory, server.socket.getsockname()[1])
    asyncore.loop()


if __name__ == "__main__":
    kind, directory = sys.argv[1], sys.argv[2]
    {"http": serve_http, "smtp": serve_smtp}[kind](directory)
