"""concours: the contest site's smallest honest stand-in, a record store on PostgreSQL.

GET /entries lists the entries, POST /entries (body: the text) adds one; both go through
PostgreSQL on host ``db``, so a round trip proves web, DNS and the database together.
"""

import http.server
import json
import os
from pathlib import Path

import psycopg2

# The connection string, password included: CONCOURS_DSN if set, else the credential systemd
# hands the service (LoadCredential=dsn:...), which no other user of web can read.
DSN = os.environ.get("CONCOURS_DSN") or Path(os.environ["CREDENTIALS_DIRECTORY"], "dsn").read_text().strip()


def connect():
    conn = psycopg2.connect(DSN)
    conn.autocommit = True
    return conn


def setup():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS entries (id serial PRIMARY KEY, text text NOT NULL)")


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/entries":
            return self.reply(404, {"error": "not found"})
        with connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT id, text FROM entries ORDER BY id")
            self.reply(200, [{"id": i, "text": t} for i, t in cur.fetchall()])

    def do_POST(self):
        if self.path != "/entries":
            return self.reply(404, {"error": "not found"})
        text = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO entries (text) VALUES (%s) RETURNING id", (text,))
            self.reply(201, {"id": cur.fetchone()[0], "text": text})


if __name__ == "__main__":
    setup()
    http.server.ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
