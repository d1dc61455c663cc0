#!/usr/bin/env python3
"""Open N PostgreSQL client connections, log each in (SCRAM-SHA-256, md5 or
cleartext), and keep them open and idle.

usage: idle_clients.py HOST PORT USER DATABASE COUNT [--inflight K] [--timeout S]

The password comes from the PGPASSWORD environment variable (never argv).
Python standard library only: one process, non-blocking sockets on epoll, at
most K logins in flight. Once every connection is logged in (ReadyForQuery)
it prints "ready N" on stdout and sleeps until SIGTERM/SIGINT; then it closes them all (sending Terminate) and exits 0.
A login failure prints "error ..." and exits 1. The SCRAM salted password is
computed once per (salt, iterations), so the client spends almost no CPU per
login and the server's side is what gets measured.
"""
import base64
import hashlib
import hmac
import os
import selectors
import signal
import socket
import struct
import sys
import time


def msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def startup_packet(user, database):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", database),
                 ("application_name", "bench idle client")):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


_salted = {}


def salted_password(password, salt, iterations):
    key = (salt, iterations)
    if key not in _salted:
        _salted[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return _salted[key]


class Conn:
    __slots__ = ("sock", "inbuf", "outbuf", "state", "nonce", "client_first_bare",
                 "server_sig")

    def __init__(self, sock):
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.state = "connecting"
        self.nonce = None
        self.client_first_bare = None
        self.server_sig = None


class Failure(Exception):
    pass


def main():
    args = sys.argv[1:]
    inflight = 100
    timeout = 600.0
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--inflight":
            inflight = int(args[i + 1]); i += 2
        elif args[i] == "--timeout":
            timeout = float(args[i + 1]); i += 2
        else:
            pos.append(args[i]); i += 1
    if len(pos) != 5:
        sys.stderr.write(__doc__)
        return 2
    host, port, user, database, count = pos[0], int(pos[1]), pos[2], pos[3], int(pos[4])
    password = os.environ.get("PGPASSWORD", "")

    sel = selectors.DefaultSelector()
    conns = []
    started = 0
    logging_in = 0
    ready = 0
    deadline = time.monotonic() + timeout

    def start_one():
        nonlocal started, logging_in
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        c = Conn(s)
        c.outbuf += startup_packet(user, database)
        conns.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
        started += 1
        logging_in += 1

    def handle_message(c, kind, body):
        nonlocal logging_in, ready
        if kind == b"E":
            fields = {}
            for part in body.split(b"\0"):
                if part:
                    fields[part[:1].decode()] = part[1:].decode(errors="replace")
            raise Failure("%s %s" % (fields.get("C", "?"), fields.get("M", "")))
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 0:
                return
            if code == 10:  # AuthenticationSASL
                mechs = body[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechs:
                    raise Failure("server offers no SCRAM-SHA-256: %r" % mechs)
                c.nonce = base64.b64encode(os.urandom(18)).decode()
                c.client_first_bare = "n=,r=" + c.nonce
                first = ("n,," + c.client_first_bare).encode()
                c.outbuf += msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
            elif code == 11:  # AuthenticationSASLContinue
                server_first = body[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                if not attrs["r"].startswith(c.nonce):
                    raise Failure("bad server nonce")
                salt = base64.b64decode(attrs["s"])
                salted = salted_password(password, salt, int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
                stored_key = hashlib.sha256(client_key).digest()
                without_proof = "c=biws,r=" + attrs["r"]
                auth_msg = ",".join((c.client_first_bare, server_first, without_proof)).encode()
                sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
                c.server_sig = base64.b64encode(
                    hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
                final = without_proof + ",p=" + base64.b64encode(proof).decode()
                c.outbuf += msg(b"p", final.encode())
            elif code == 12:  # AuthenticationSASLFinal
                if body[4:].decode() != "v=" + c.server_sig:
                    raise Failure("bad server signature")
            elif code == 5:  # md5
                inner = hashlib.md5((password + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                c.outbuf += msg(b"p", b"md5" + outer.encode() + b"\0")
            elif code == 3:  # cleartext
                c.outbuf += msg(b"p", password.encode() + b"\0")
            else:
                raise Failure("unsupported authentication request %d" % code)
        elif kind == b"Z":
            if c.state != "idle":
                c.state = "idle"
                logging_in -= 1
                ready += 1
        # ParameterStatus, BackendKeyData, NoticeResponse: ignored

    def on_event(c, mask):
        if mask & selectors.EVENT_WRITE and c.outbuf:
            if c.state == "connecting":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise Failure("connect: %s" % os.strerror(err))
                c.state = "login"
            try:
                n = c.sock.send(c.outbuf)
                del c.outbuf[:n]
            except BlockingIOError:
                pass
        if mask & selectors.EVENT_READ:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                data = None
            if data is not None:
                if not data:
                    raise Failure("server closed the connection")
                c.inbuf += data
                while len(c.inbuf) >= 5:
                    length = struct.unpack("!I", c.inbuf[1:5])[0]
                    if len(c.inbuf) < 1 + length:
                        break
                    kind = bytes(c.inbuf[:1])
                    body = bytes(c.inbuf[5:1 + length])
                    del c.inbuf[:1 + length]
                    handle_message(c, kind, body)
        if c.state == "idle" and not c.outbuf:
            # logged in: nothing more to do with it until the end
            sel.unregister(c.sock)
            c.inbuf = None
        else:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
            sel.modify(c.sock, events, c)

    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        while ready < count:
            if stop:
                raise Failure("interrupted")
            if time.monotonic() > deadline:
                raise Failure("timed out with %d of %d logged in" % (ready, count))
            while started < count and logging_in < inflight:
                start_one()
            for key, mask in sel.select(timeout=1.0):
                on_event(key.data, mask)
    except (Failure, OSError) as e:
        print("error after %d logins: %s" % (ready, e), flush=True)
        return 1

    print("ready %d" % ready, flush=True)
    while not stop:
        time.sleep(0.5)
    term = msg(b"X", b"")
    for c in conns:
        try:
            c.sock.send(term)
        except OSError:
            pass
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
