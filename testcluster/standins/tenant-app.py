#!/usr/bin/env python3
"""A stand-in for a tenant's Netdelta app in the test cluster's image seclab.test/tenant-app.

It meets the contract seclab documents for a tenant app image (README, "Tenant databases"):
the Deployment's arguments are `<site> <port> ...` and the database comes from DB_HOST,
DB_PORT (3306 when unset), DB_NAME, DB_USER and DB_PASSWORD. It serves HTTP on the port:
`/` names the site, `/ready` answers 200 only while `SELECT 1` succeeds on its own database
with its own user (503 with the error otherwise). The password is never printed.
"""

import http.server
import os
import sys

import pymysql


def check_database():
    """None when a query succeeds on the app's database, else the error (no password)."""
    try:
        connection = pymysql.connect(
            host=os.environ.get("DB_HOST", ""),
            port=int(os.environ.get("DB_PORT", "3306")),
            user=os.environ.get("DB_USER", ""),
            password=os.environ.get("DB_PASSWORD", ""),
            database=os.environ.get("DB_NAME", ""),
            connect_timeout=3,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connection.close()
        return None
    except Exception as error:  # any failure means not ready; say which
        message = str(error)
        secret = os.environ.get("DB_PASSWORD")
        return message.replace(secret, "***") if secret else message


class Handler(http.server.BaseHTTPRequestHandler):
    site = "site"

    def do_GET(self):
        if self.path == "/ready":
            error = check_database()
            code, body = (200, "ready\n") if error is None else (503, f"database: {error}\n")
            if error is not None:
                print(f"not ready: database: {error}", flush=True)
        else:
            code, body = 200, f"netdelta stand-in for site {self.site}\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main(argv):
    site = argv[0] if argv else "site"
    port = int(argv[1]) if len(argv) > 1 else 9004
    Handler.site = site
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"site {site} on port {port}, database {os.environ.get('DB_NAME')} at {os.environ.get('DB_HOST')}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
