#!/usr/bin/python3
"""pad: the reference lab's containerised application, a notepad kept in PostgreSQL.

It runs in the ``pad`` pod on apps, beside its database, which it reaches on 127.0.0.1 (the
pod shares one network namespace). ``GET /`` lists the notes, one ``id<TAB>text`` line each
after a header; ``POST /`` stores the request's body as a note and answers 201 with its id.
One connection per request: PostgreSQL may start after pad, or restart under it.
"""

import http.server
import os
import signal
import sys

import psycopg2

PORT = int(os.environ.get("PAD_PORT", "3000"))  # in the pod
with open("/etc/pad/dsn") as dsn_file:  # readable by the container's root alone
    DSN = dsn_file.read().strip()


def query(sql: str, *args: str) -> list[tuple[object, ...]]:
    with psycopg2.connect(DSN, connect_timeout=5) as db, db.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL)")
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


class Pad(http.server.BaseHTTPRequestHandler):
    def answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        try:
            rows = query("SELECT id, text FROM notes ORDER BY id")
        except psycopg2.Error as exc:
            self.answer(503, f"pad: no database: {exc}")
            return
        self.answer(200, "pad\n" + "".join(f"{i}\t{t}\n" for i, t in rows))

    def do_POST(self) -> None:
        text = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode().strip()
        if not text:
            self.answer(400, "pad: an empty note\n")
            return
        try:
            (row,) = query("INSERT INTO notes (text) VALUES (%s) RETURNING id", text)
        except psycopg2.Error as exc:
            self.answer(503, f"pad: no database: {exc}")
            return
        self.answer(201, f"{row[0]}\n")

    def log_message(self, format: str, *args: object) -> None:  # to the journal, through conmon
        print(f"pad: {self.address_string()} {format % args}", file=sys.stdout, flush=True)


if __name__ == "__main__":
    # pad is its container's PID 1, which the kernel sends no signal it has no handler for:
    # without one, `podman stop` waits its 10 s out and kills it, on every stop of the pod.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http.server.ThreadingHTTPServer(("", PORT), Pad).serve_forever()
