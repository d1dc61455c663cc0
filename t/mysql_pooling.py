#!/usr/bin/python3
# Two and more MySQL clients sharing one origin connection through the agent
# (origin_connection_limit 1, transaction pooling), interleaved: what one
# session does to its session must never reach the other. Run by
# t/102_mysql_pooling.pl, which starts MariaDB and the agent; prints one
# line per check, "ok - what" or "not ok - what: why", and ends with
# "done". PyMySQL (python3-pymysql), autocommit on unless a check says.
#
# Environment: AGENT_PORT (the agent's mysql_listen_port), ORIGIN_PORT,
# PW (the app user's password), CONFIG (the config's name = the database
# to connect to), DB (the origin database).
import os
import socket
import struct
import sys
import threading
import time

import pymysql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklines import check, say  # noqa: E402

AGENT = int(os.environ["AGENT_PORT"])
ORIGIN = int(os.environ["ORIGIN_PORT"])
PW = os.environ["PW"]
CONFIG = os.environ["CONFIG"]
DB = os.environ["DB"]


def agent(**kw):
    kw.setdefault("autocommit", True)
    return pymysql.connect(host="127.0.0.1", port=AGENT, user="app", password=PW,
                           database=CONFIG, read_timeout=30, **kw)


def origin():
    return pymysql.connect(host="127.0.0.1", port=ORIGIN, user="app", password=PW,
                           database=DB, autocommit=True)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        row = c.fetchone()
        return row[0] if row else None


def error_of(conn, sql):
    try:
        one(conn, sql)
    except pymysql.MySQLError as e:
        return e.args[0]
    return None


direct = origin()
default_mode = one(direct, "SELECT @@sql_mode")
default_tz = one(direct, "SELECT @@time_zone")
one(direct, "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY AUTO_INCREMENT, v varchar(40))")
one(direct, "TRUNCATE items")

a = agent()
b = agent()

# 1. a SET of one session is not the other's, and each keeps its own
one(a, "SET sql_mode = 'ANSI'")
check("a SET sql_mode: the other session, on the same origin connection, has the default",
      one(b, "SELECT @@sql_mode"), default_mode)
say("ANSI" in one(a, "SELECT @@sql_mode"), "and the session that set it keeps it")
check("back to the other: still the default", one(b, "SELECT @@sql_mode"), default_mode)
one(a, "SET SESSION sql_mode = DEFAULT")
check("SET ... = DEFAULT carried too", one(a, "SELECT @@sql_mode"), default_mode)

# 2. USE
one(a, "USE information_schema")
check("USE in one session: the other is still in the config's database",
      one(b, "SELECT DATABASE()"), DB)
check("the session that said USE is in its database", one(a, "SELECT DATABASE()"), "information_schema")
a.select_db(DB)     # COM_INIT_DB
check("COM_INIT_DB back", one(a, "SELECT DATABASE()"), DB)
check("and the other session unmoved", one(b, "SELECT DATABASE()"), DB)

# 3. a transaction holds the connection: the other session waits, then
#    sees only what was committed
one(a, "BEGIN")
one(a, "INSERT INTO items (v) VALUES ('in a transaction')")
seen = {}


def b_reads():
    seen["count"] = one(b, "SELECT count(*) FROM items")
    seen["at"] = time.monotonic()


t = threading.Thread(target=b_reads)
t.start()
time.sleep(0.5)
say(t.is_alive(), "while a transaction is open on the only origin connection, the other session waits")
check("the uncommitted row is invisible directly", one(direct, "SELECT count(*) FROM items"), 0)
committed_at = time.monotonic()
one(a, "COMMIT")
t.join(10)
say(not t.is_alive() and seen.get("at", 0) >= committed_at,
    "the waiting session goes on once the transaction ends")
check("and sees the committed row", seen.get("count"), 1)

# 4. autocommit off is the session's, carried to whichever connection it gets
one(a, "SET autocommit = 0")
one(a, "INSERT INTO items (v) VALUES ('autocommit off')")
check("autocommit off: the insert is not committed", one(direct, "SELECT count(*) FROM items"), 1)
one(a, "COMMIT")
check("until COMMIT", one(direct, "SELECT count(*) FROM items"), 2)
one(b, "INSERT INTO items (v) VALUES ('autocommit on')")
check("the other session, autocommit on, commits at once", one(direct, "SELECT count(*) FROM items"), 3)
one(a, "INSERT INTO items (v) VALUES ('off again')")
check("the first session's next insert is still in a transaction (autocommit carried)",
      one(direct, "SELECT count(*) FROM items"), 3)
one(a, "ROLLBACK")
check("and a ROLLBACK drops it", one(direct, "SELECT count(*) FROM items"), 3)
one(a, "SET autocommit = 1")
check("autocommit back on", one(a, "SELECT @@autocommit"), 1)

# 5. the previous statement's diagnostics: on the connection that ran it,
#    or refused (never another session's)
one(a, "INSERT INTO items (v) VALUES ('id')")
last = one(direct, "SELECT max(id) FROM items")
check("LAST_INSERT_ID() right after the insert", one(a, "SELECT LAST_INSERT_ID()"), last)
one(a, "INSERT INTO items (v) VALUES ('id 2')")
one(b, "SELECT 1")      # the connection serves another session
code = error_of(a, "SELECT LAST_INSERT_ID()")
check("LAST_INSERT_ID() after another session used the connection: refused (1105)", code, 1105)
code = error_of(agent(), "SELECT ROW_COUNT()")
check("a new session's first statement reading diagnostics: refused, not another's", code, 1105)

# 6. a user variable pins the session: it keeps its connection, the other
#    session waits for it (query_wait_timeout), and after it leaves nothing
#    of it is seen
one(a, "SET @secret = 'a only'")
check("the pinned session keeps its user variable", one(a, "SELECT @secret"), "a only")
started = time.monotonic()
code = error_of(b, "SELECT 'b'")
say(code is not None and time.monotonic() - started >= 1.5,
    "the other session cannot have the pinned connection: it times out waiting",
    "error %r after %.1f s" % (code, time.monotonic() - started))
a.close()
time.sleep(0.3)
b = agent()
check("once the pinned session left, its variable is gone (the connection was reset)",
      one(b, "SELECT @secret"), None)
b.close()           # reading a user variable pins too
time.sleep(0.3)

# 7. a procedure that changes the session where the text cannot show it: the
#    origin says so and the session is pinned; the other session keeps the default
one(direct, "DROP PROCEDURE IF EXISTS set_tz")
one(direct, "CREATE PROCEDURE set_tz() BEGIN SET @@session.time_zone = '+05:00'; END")
c = agent()
one(c, "CALL set_tz()")
check("CALL that sets time_zone: the session has it", one(c, "SELECT @@time_zone"), "+05:00")
c.close()
time.sleep(0.3)
b = agent()
check("and no other session ever sees it", one(b, "SELECT @@time_zone"), default_tz)

# 8. a client killed mid-transaction: its transaction is rolled back, and the
#    connection serves the next one
k = agent()
one(k, "BEGIN")
one(k, "INSERT INTO items (v) VALUES ('killed')")
k._sock.shutdown(socket.SHUT_RDWR)
k._sock.close()
b = agent()
check("a client gone mid-transaction: the next session goes on", one(b, "SELECT 7"), 7)
check("and the gone client's insert was rolled back",
      one(direct, "SELECT count(*) FROM items WHERE v = 'killed'"), 0)

# 9. KILL: the ids are the agent's, answered by the agent; a client gone
#    mid-statement has its statement killed on the origin
sleeper = agent()
result = {}


def sleep_long():
    try:
        result["value"] = one(sleeper, "SELECT SLEEP(20)")
    except pymysql.MySQLError as e:
        result["value"] = "error %d" % e.args[0]


t = threading.Thread(target=sleep_long)
t.start()
time.sleep(0.5)
killer = agent()
code = error_of(killer, "KILL QUERY %d" % sleeper.thread_id())
check("KILL QUERY of another session by its id (the agent's): OK, without an origin connection",
      code, None)
t.join(15)
say(not t.is_alive() and result.get("value") in (1, "error 1317"),
    "and that session's statement was interrupted (1317, or SLEEP() returning 1)", repr(result))
check("KILL of an id nobody has: 1094", error_of(killer, "KILL 987654"), 1094)
victim = agent()
one(victim, "SELECT 1")
check("KILL CONNECTION of another session: OK", error_of(killer, "KILL CONNECTION %d" % victim.thread_id()), None)
code = error_of(victim, "SELECT 1")
say(code is not None, "and the killed session cannot go on", repr(code))
killer.close()
gone = agent()
gone_sock = gone._sock
gone_sock.sendall(struct.pack("<I", 18)[:3] + b"\x00" + b"\x03SELECT SLEEP(30)")
time.sleep(0.5)
gone_sock.shutdown(socket.SHUT_RDWR)
gone_sock.close()
after = agent()
check("a client gone mid-statement: the next session gets the connection", one(after, "SELECT 9"), 9)
check("its statement no longer runs on the origin (it was killed, not waited for)",
      one(direct, "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(30)%'"), 0)
after.close()

# 10. LOAD DATA LOCAL: refused unless the config allows it
ll = agent(local_infile=True)
code = error_of(ll, "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE items (v)")
check("LOAD DATA LOCAL through a config that does not allow it: 1148", code, 1148)
ll.close()

# 11. COM_CHANGE_USER (MySQLdb, libmariadb's): the session is reset and logs in again
import MySQLdb
md = MySQLdb.connect(host="127.0.0.1", port=AGENT, user="app", passwd=PW, db=CONFIG)
md.autocommit(True)
mc = md.cursor()
mc.execute("SET sql_mode = 'ANSI'")
mc.execute("USE information_schema")
md.change_user("app", PW, CONFIG)
mc = md.cursor()
mc.execute("SELECT @@sql_mode, DATABASE()")
check("COM_CHANGE_USER: the session's settings and database are back to a new login's",
      mc.fetchone(), (default_mode, DB))
try:
    md.change_user("app", "wrong", CONFIG)
    say(False, "COM_CHANGE_USER with a wrong password is refused", "it was not")
except MySQLdb.MySQLError as e:
    check("COM_CHANGE_USER with a wrong password is refused (1045)", e.args[0], 1045)
md.close()
so = MySQLdb.connect(host="127.0.0.1", port=AGENT, user="app", passwd=PW, db=CONFIG)
so.autocommit(True)
try:
    so.set_server_option(0)     # MYSQL_OPTION_MULTI_STATEMENTS_ON
    sc = so.cursor()
    sc.execute("SELECT 1; SELECT 2")
    first = sc.fetchall()
    sc.nextset()
    check("COM_SET_OPTION (multiple statements on): a multi-statement text runs",
          (first, sc.fetchall()), (((1,),), ((2,),)))
except MySQLdb.MySQLError as e:
    say(False, "COM_SET_OPTION (multiple statements on): a multi-statement text runs", repr(e))
so.close()
time.sleep(0.3)
check("and the connection it changed is not reused (a new session gets a new one)",
      one(agent(), "SELECT 1"), 1)

# 12. bad input: a wrong password, an unknown config, malformed commands
try:
    pymysql.connect(host="127.0.0.1", port=AGENT, user="app", password="wrong", database=CONFIG)
    say(False, "a wrong password is refused", "it logged in")
except pymysql.MySQLError as e:
    check("a wrong password is refused with 1045", e.args[0], 1045)
try:
    pymysql.connect(host="127.0.0.1", port=AGENT, user="app", password=PW, database="nosuch")
    say(False, "an unknown config is refused", "it logged in")
except pymysql.MySQLError as e:
    check("an unknown config is refused with 1049", e.args[0], 1049)


def raw_command(payload):
    """A logged-in raw socket session sends payload as one command; its reply's first byte."""
    s = agent()
    sock = s._sock
    sock.sendall(struct.pack("<I", len(payload))[:3] + b"\x00" + payload)
    sock.settimeout(10)
    head = sock.recv(4)
    body = sock.recv(struct.unpack("<I", head[:3] + b"\x00")[0]) if len(head) == 4 else b""
    return s, body


s, body = raw_command(b"")
say(body[:1] == b"\xff", "an empty command: an ERR packet", repr(body[:40]))
s, body = raw_command(b"\x99junk")
say(body[:1] == b"\xff" and b"Unknown command" in body, "an unknown command: ERR 'Unknown command'",
    repr(body[:60]))
s, body = raw_command(b"\x17\x01\x02")
say(body[:1] == b"\xff", "a truncated COM_STMT_EXECUTE: ERR", repr(body[:60]))
check("and the agent still serves", one(agent(), "SELECT 8"), 8)

print("done", flush=True)
