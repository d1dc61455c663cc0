#!/usr/bin/env python3
"""P6's outside check of invalidation latency: commit on the origin, then read
through the agent until the cached result is gone.

usage: inval_probe.py HOST ORIGIN_PORT AGENT_PORT USER ORIGIN_DB AGENT_DB SECONDS

The password comes from PGPASSWORD. Table bench_probe (id int PRIMARY KEY,
v bigint) must hold row id 1. Python standard library only (blocking sockets,
SCRAM-SHA-256, md5 or cleartext). For SECONDS, each iteration:

  1. reads SELECT v FROM bench_probe WHERE id = 1 through the agent (config
     AGENT_DB, caching on) until the agent served it from the cache: the
     agent's /metrics hit count must grow over one read (METRICS=host:port in
     the environment); at most 50 tries, else the iteration is skipped;
  2. commits UPDATE bench_probe SET v = v + 1 ... RETURNING v on the origin
     directly (autocommit) and takes the time its reply arrives (commit ack);
  3. sends the same SELECT through the agent, again and again, until the
     answer is the new value; the time that answer arrives minus the commit
     ack is the iteration's figure (it includes the one origin round trip of
     the fill that fetched the new value);
  4. sleeps 5-15 ms (random), so commits are not back to back.

Prints one line per iteration, "lat_ms stale_reads", and at the end
"skipped N" (iterations whose read in step 1 never became a hit).
"""
import base64
import hashlib
import hmac
import os
import random
import socket
import struct
import sys
import time
import urllib.request


def msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


class Conn:
    def __init__(self, host, port, user, database, password):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        body = struct.pack("!I", 196608)
        for k, v in (("user", user), ("database", database),
                     ("application_name", "bench inval probe")):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self.login(user, password)

    def read_msg(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    kind, body = bytes(self.buf[:1]), bytes(self.buf[5:n + 1])
                    del self.buf[:n + 1]
                    return kind, body
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data

    def login(self, user, password):
        nonce = first_bare = server_sig = None
        while True:
            kind, body = self.read_msg()
            if kind == b"E":
                raise RuntimeError("login failed: %r" % body)
            if kind == b"Z":
                return
            if kind != b"R":
                continue
            code = struct.unpack("!I", body[:4])[0]
            if code == 3:
                self.sock.sendall(msg(b"p", password.encode() + b"\0"))
            elif code == 5:
                inner = hashlib.md5((password + user).encode()).hexdigest().encode()
                outer = hashlib.md5(inner + body[4:8]).hexdigest()
                self.sock.sendall(msg(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 10:
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = "n=,r=" + nonce
                first = ("n,," + first_bare).encode()
                self.sock.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11:
                server_first = body[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                if not attrs["r"].startswith(nonce):
                    raise RuntimeError("bad server nonce")
                salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                             base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
                stored_key = hashlib.sha256(client_key).digest()
                without_proof = "c=biws,r=" + attrs["r"]
                auth_msg = ",".join((first_bare, server_first, without_proof)).encode()
                sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
                server_sig = base64.b64encode(
                    hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
                final = without_proof + ",p=" + base64.b64encode(proof).decode()
                self.sock.sendall(msg(b"p", final.encode()))
            elif code == 12:
                if body[4:].decode() != "v=" + server_sig:
                    raise RuntimeError("bad server signature")
            elif code != 0:
                raise RuntimeError("unsupported authentication request %d" % code)

    def send(self, sql):
        self.sock.sendall(msg(b"Q", sql.encode() + b"\0"))

    def result(self):
        """the first column of the first row (text), after ReadyForQuery"""
        value = None
        while True:
            kind, body = self.read_msg()
            if kind == b"D" and value is None:
                n = struct.unpack("!i", body[2:6])[0]
                value = body[6:6 + n].decode()
            elif kind == b"E":
                raise RuntimeError("query failed: %r" % body)
            elif kind == b"Z":
                return value

    def query(self, sql):
        self.send(sql)
        return self.result()


def hits(metrics, config):
    want = 'hyperdrive_cache_statements_total{config="%s",status="hit"} ' % config
    with urllib.request.urlopen("http://%s/metrics" % metrics, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(want):
                return int(line.split()[-1])
    return 0


def main():
    if len(sys.argv) != 8:
        sys.stderr.write(__doc__)
        return 2
    host, oport, aport, user, odb, adb, secs = sys.argv[1:]
    password = os.environ.get("PGPASSWORD", "")
    metrics = os.environ["METRICS"]
    origin = Conn(host, int(oport), user, odb, password)
    agent = Conn(host, int(aport), user, adb, password)
    read = "SELECT v FROM bench_probe WHERE id = 1"
    end = time.monotonic() + float(secs)
    skipped = 0
    while time.monotonic() < end:
        cached = False
        for _ in range(50):
            h0 = hits(metrics, adb)
            agent.query(read)
            if hits(metrics, adb) > h0:
                cached = True
                break
            time.sleep(0.002)
        if not cached:
            skipped += 1
            continue
        new = origin.query("UPDATE bench_probe SET v = v + 1 WHERE id = 1 RETURNING v")
        acked = time.perf_counter()
        stale = 0
        while True:
            got = agent.query(read)
            if got == new:
                break
            stale += 1
            if time.perf_counter() - acked > 10:
                raise RuntimeError("the agent served %s for 10 s after %s committed" % (got, new))
        print("%.3f %d" % ((time.perf_counter() - acked) * 1000, stale), flush=True)
        time.sleep(random.uniform(0.005, 0.015))
    print("skipped %d" % skipped, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
