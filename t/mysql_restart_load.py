#!/usr/bin/python3
# Ten MySQL sessions over an origin limit of two, each in a loop of
# transactions that read back what they wrote, while the origin restarts
# (t/106_mysql_origin_restart.pl restarts it when this prints "loaded").
# Every answer must be the session's own; a failure must be a MySQL error
# (the connection lost, or refused while the origin is down), after which
# the session reconnects; once the origin is back every session works
# again. Prints "ok - ..." / "not ok - ...: why" lines and "done".
#
# Environment: AGENT_PORT, PW, CONFIG; RESTARTED (a file that exists once
# the origin is back).
import os
import sys
import threading
import time

import pymysql

AGENT = int(os.environ["AGENT_PORT"])
PW = os.environ["PW"]
CONFIG = os.environ["CONFIG"]
RESTARTED = os.environ["RESTARTED"]
SESSIONS = 10

lock = threading.Lock()
stats = {"ok": 0, "errors": 0, "wrong": [], "kinds": set(), "after": 0}


def connect():
    return pymysql.connect(host="127.0.0.1", port=AGENT, user="app", password=PW, database=CONFIG,
                           autocommit=True, read_timeout=20, connect_timeout=20)


def worker(n, stop):
    conn = None
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if conn is None:
                conn = connect()
            with conn.cursor() as c:
                c.execute("BEGIN")
                c.execute("REPLACE INTO marks VALUES (%s, %s)", (n, i))
                c.execute("SELECT v FROM marks WHERE id = %s", (n,))
                got = c.fetchone()[0]
                c.execute("COMMIT")
                c.execute("SELECT %s + 0", (n * 1000 + i,))
                echo = c.fetchone()[0]
            with lock:
                if got != i or echo != n * 1000 + i:
                    stats["wrong"].append((n, i, got, echo))
                stats["ok"] += 1
                if os.path.exists(RESTARTED):
                    stats["after"] += 1
        except pymysql.MySQLError as e:
            with lock:
                stats["errors"] += 1
                stats["kinds"].add(e.args[0] if e.args else repr(e))
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.05)


setup = connect()
with setup.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS marks (id int PRIMARY KEY, v int)")
setup.close()

stop = threading.Event()
threads = [threading.Thread(target=worker, args=(n, stop)) for n in range(SESSIONS)]
for t in threads:
    t.start()
time.sleep(2)
print("loaded", flush=True)
deadline = time.monotonic() + 90
while not os.path.exists(RESTARTED) and time.monotonic() < deadline:
    time.sleep(0.1)
# after the restart: every session must get through again
before = stats["after"]
time.sleep(5)
stop.set()
for t in threads:
    t.join(30)

print(("ok - " if not stats["wrong"] else "not ok - ") +
      "no session ever got another's row or answer" +
      ("" if not stats["wrong"] else ": %r" % stats["wrong"][:5]), flush=True)
print(("ok - " if stats["ok"] > 100 else "not ok - ") +
      "transactions went through (%d)" % stats["ok"], flush=True)
print(("ok - " if stats["after"] - before >= SESSIONS else "not ok - ") +
      "and again once the origin was back (%d)" % (stats["after"] - before), flush=True)
codes = {k for k in stats["kinds"] if not isinstance(k, int)}
print(("ok - " if not codes else "not ok - ") +
      "every failure was a MySQL error, not a broken reply: %r" % sorted(stats["kinds"], key=str),
      flush=True)
print(("ok - " if all(not t.is_alive() for t in threads) else "not ok - ") +
      "no session hung", flush=True)
print("done", flush=True)
