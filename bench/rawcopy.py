#!/usr/bin/env python3
"""The cheapest reader of a binary COPY stream: one query, its bytes read from the socket into
one 1 MB buffer and dropped. No libpq, no decoding, no per-row work at all: what is left is the
kernel's cost of receiving the bytes, which every client pays. The bench's floor proof uses its
CPU as the least any reader can spend (see bench/README.md).

    PGHOST=127.0.0.1 PGPORT=5432 PGUSER=u PGPASSWORD=p PGDATABASE=db \\
        python3 bench/rawcopy.py "SELECT * FROM public.rental"

Prints one JSON line: {"rows": N, "bytes": B, "reads": R}. Only what the bench needs of the protocol:
trust, cleartext, md5 and SCRAM-SHA-256 authentication, no TLS.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import sys

# CopyDone, CommandComplete "COPY n", ReadyForQuery: how every successful COPY ... TO STDOUT ends.
END = re.compile(rb"c\x00\x00\x00\x04C....COPY (\d+)\x00Z\x00\x00\x00\x05I\Z", re.S)


def fail(msg: str) -> None:
    sys.exit(f"rawcopy: {msg}")


class Conn:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def send(self, kind: bytes, body: bytes) -> None:
        self.sock.sendall(kind + struct.pack("!i", len(body) + 4) + body)

    def message(self) -> tuple[bytes, bytes]:
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!i", self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    kind, body, self.buf = self.buf[:1], self.buf[5:n + 1], self.buf[n + 1:]
                    if kind == b"E":
                        fields = dict((f[:1], f[1:]) for f in body.split(b"\x00") if f)
                        fail(fields.get(b"M", b"server error").decode(errors="replace"))
                    return kind, body
            got = self.sock.recv(65536)
            if not got:
                fail("the server closed the connection")
            self.buf += got


def scram(c: Conn, user: str, password: str) -> None:
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    first = ("n,," + first_bare).encode()
    c.send(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first)
    kind, body = c.message()
    if kind != b"R" or struct.unpack("!i", body[:4])[0] != 11:
        fail("unexpected SASL reply")
    server_first = body[4:].decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        fail("the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    final_bare = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first},{final_bare}".encode()
    sig = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    c.send(b"p", f"{final_bare},p={proof}".encode())


def connect() -> Conn:
    env = os.environ
    user, db = env.get("PGUSER", "postgres"), env.get("PGDATABASE", env.get("PGUSER", "postgres"))
    password = env.get("PGPASSWORD", "")
    sock = socket.create_connection((env.get("PGHOST", "127.0.0.1"), int(env.get("PGPORT", "5432"))))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Conn(sock)
    params = f"user\x00{user}\x00database\x00{db}\x00application_name\x00pagila_star_bench_rawcopy\x00\x00"
    body = struct.pack("!i", 196608) + params.encode()
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    while True:
        kind, body = c.message()
        if kind == b"R":
            code = struct.unpack("!i", body[:4])[0]
            if code == 3:
                c.send(b"p", password.encode() + b"\x00")
            elif code == 5:
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                c.send(b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\x00")
            elif code == 10:
                scram(c, user, password)
            elif code not in (0, 12):
                fail(f"authentication method {code} is not supported")
        elif kind == b"Z":
            return c


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: rawcopy.py QUERY")
    c = connect()
    c.send(b"Q", f"COPY ({sys.argv[1]}) TO STDOUT (FORMAT binary)\x00".encode())
    kind, body = c.message()  # CopyOutResponse, or the query's error (fail() prints it)
    if kind != b"H":
        fail(f"unexpected reply {kind!r} to the COPY")
    # As few wake-ups as the kernel allows: a read returns once 256 kB have arrived, or after
    # a clock tick (the end of the stream is smaller).
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 256 * 1024)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 1000))
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total, tail = 5 + len(body) + len(c.buf), c.buf[-64:]
    recv_into = c.sock.recv_into
    reads = 0
    while True:
        try:
            n = recv_into(view)
        except (BlockingIOError, TimeoutError):
            continue
        reads += 1
        if not n:
            fail("the server closed the connection mid-stream")
        total += n
        tail = (tail + bytes(view[:n]))[-64:] if n < 64 else bytes(view[n - 64:n])
        if tail.endswith(b"Z\x00\x00\x00\x05I"):  # ReadyForQuery: the query is over
            if m := END.search(tail):
                break
            fail("the COPY ended without its CommandComplete (a server error: see the server's log)")
    c.send(b"X", b"")
    print(json.dumps({"rows": int(m.group(1)), "bytes": total, "reads": reads}))


if __name__ == "__main__":
    main()
