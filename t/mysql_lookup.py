#!/usr/bin/python3
# Logins of other origin users through the agent (their mysql_native_password
# hash looked up on the origin, agent/mywire/my_lookup.c). Run by
# t/104_mysql_lookup.pl, which starts MariaDB and the agent and made the
# users; prints one line per check, "ok - what" or "not ok - what: why",
# and ends with "done". PyMySQL (python3-pymysql).
#
# Usage: mysql_lookup.py before|after
#   before: the logins, refusals, a password change, a lookup held by a
#           lock while other clients go on
#   after:  (the origin was restarted meanwhile) a lookup on the dropped
#           control connection; then the config's user loses its grant on
#           mysql.global_priv (refused, the log says which GRANT), and gets
#           mysql.user instead (MariaDB's view: logins again)
#
# Environment: AGENT_PORT (mysql_listen_port), ORIGIN_SOCKET (the origin's
# Unix socket: root, no password, for the administrator's statements), PW
# (the config user's password), CONFIG (the config's name).
import os
import re
import sys
import threading
import time

import pymysql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklines import check, say  # noqa: E402

AGENT = int(os.environ["AGENT_PORT"])
SOCKET = os.environ["ORIGIN_SOCKET"]
PW = os.environ["PW"]
CONFIG = os.environ["CONFIG"]


def root():
    return pymysql.connect(unix_socket=SOCKET, user="root", autocommit=True, charset="utf8mb4")


def admin(sql):
    with root() as c:
        c.cursor().execute(sql)


def login(user, password):
    """(CURRENT_USER() as the origin reports it, None) or (None, (code, message))."""
    try:
        c = pymysql.connect(host="127.0.0.1", port=AGENT, user=user, password=password,
                            database=CONFIG, read_timeout=60, charset="utf8mb4")
    except pymysql.err.MySQLError as e:
        return None, (e.args[0], e.args[1])
    try:
        cur = c.cursor()
        cur.execute("SELECT CURRENT_USER(), (SELECT COUNT(*) FROM items)")
        who, n = cur.fetchone()
        return (who if n == 2 else "rows: %r" % n), None
    except pymysql.err.MySQLError as e:
        return None, ("after login", e.args[0], e.args[1])
    finally:
        c.close()


def refused(what, user, password):
    who, err = login(user, password)
    say(err is not None and err[0] == 1045, what, "got %r %r" % (who, err))
    return err[1] if err else ""


def shape(message, user):
    """The refusal's text without the user name and the client's port."""
    return re.sub(r":\d+'", ":PORT'", message.replace("'" + user + "'@", "'USER'@"))


def before():
    check("the config's own user logs in", login("app", PW)[0], "app@127.0.0.1")
    check("another user, right password: logged in to the origin as that user "
          "(the most specific of its two host rows)", login("bob", "bob-pw")[0], "bob@127.0.0.1")
    check("again (its hash from the cache now)", login("bob", "bob-pw")[0], "bob@127.0.0.1")
    wrong = refused("a wrong password: 1045", "bob", "not-bob-pw")
    unknown = refused("an unknown user: 1045 too", "nobody", "bob-pw")
    check("the unknown user's refusal reads as the wrong password's (no user enumeration)",
          shape(unknown, "nobody"), shape(wrong, "bob"))
    check("and says what MariaDB would", shape(wrong, "bob"),
          "Access denied for user 'USER'@'127.0.0.1:PORT' (using password: YES)")
    nopw = refused("no password for a user that has one: 1045", "bob", "")
    say(nopw.endswith("(using password: NO)"), "saying no password was used", nopw)
    ed = refused("an ed25519 account, right password: refused", "ed", "ed-pw")
    check("like a wrong password", shape(ed, "ed"), shape(wrong, "bob"))
    refused("a user whose host rows have different passwords: refused (with one)", "dave", "dave-1")
    refused("(and with the other)", "dave", "dave-2")
    refused("a locked account: refused", "locked", "locked-pw")
    check("an account without a password logs in without one", login("carol", "")[0], "carol@%")
    refused("but not with one", "carol", "x")
    check("a name with a quote and a backslash", login("o'b\\r", "quote-pw")[0], "o'b\\r@%")
    check("a UTF-8 name", login("zo\u00eb", "zoe-pw")[0], "zo\u00eb@%")
    refused("the quoted name's password does not open another account", "o'b\\", "quote-pw")

    # a new password works at once (the cached hash is read again), the old one stops
    admin("ALTER USER 'bob'@'%' IDENTIFIED BY 'bob-new', 'bob'@'127.0.0.1' IDENTIFIED BY 'bob-new'")
    check("after ALTER USER, the new password logs in at once", login("bob", "bob-new")[0],
          "bob@127.0.0.1")
    refused("and the old one is refused", "bob", "bob-pw")

    # COM_CHANGE_USER (MySQLdb, libmariadb's) to another user goes through the lookup too
    import MySQLdb
    md = MySQLdb.connect(host="127.0.0.1", port=AGENT, user="app", passwd=PW, db=CONFIG)
    md.change_user("bob", "bob-new", CONFIG)
    mc = md.cursor()
    mc.execute("SELECT CURRENT_USER()")
    check("COM_CHANGE_USER from the config's user to another: the origin sees that user",
          mc.fetchone()[0], "bob@127.0.0.1")
    try:
        md.change_user("carol", "wrong", CONFIG)
        say(False, "COM_CHANGE_USER to another user with a wrong password is refused", "it was not")
    except MySQLdb.MySQLError as e:
        check("COM_CHANGE_USER to another user with a wrong password is refused (1045)", e.args[0], 1045)
    md.close()

    # the lookup held by a lock: the agent goes on serving others
    r = root()
    rc = r.cursor()
    rc.execute("LOCK TABLES mysql.global_priv WRITE")
    held = {}

    def frank():
        held["frank"] = login("frank", "frank-pw")

    t = threading.Thread(target=frank)
    t.start()
    waiting = False
    for _ in range(600):
        rc.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                   "AND INFO LIKE 'SELECT JSON_VALUE(Priv%'")
        if rc.fetchone()[0] > 0:
            waiting = True
            break
        time.sleep(0.05)
    say(waiting, "a lookup waits on the origin behind the lock")
    check("meanwhile the config's user logs in and runs a query", login("app", PW)[0], "app@127.0.0.1")
    say(t.is_alive(), "and the held login is still waiting, not refused")
    rc.execute("UNLOCK TABLES")
    t.join(60)
    check("once the lock goes, the held login completes", held.get("frank", (None,))[0], "frank@%")
    r.close()


def after():
    check("after the origin restarted: a new lookup (the control connection reopened)",
          login("gina", "gina-pw")[0], "gina@%")
    admin("REVOKE SELECT ON mysql.global_priv FROM 'app'@'127.0.0.1'")
    msg = refused("the config's user without the grant: other users are refused", "henry", "henry-pw")
    say("could not read the user's password hash" in msg, "saying the hash could not be read", msg)
    check("the config's own user still logs in", login("app", PW)[0], "app@127.0.0.1")
    admin("GRANT SELECT ON mysql.user TO 'app'@'127.0.0.1'")
    check("granted MariaDB's mysql.user view instead: the user logs in", login("henry", "henry-pw")[0],
          "henry@%")


if sys.argv[1] == "before":
    before()
else:
    after()
print("done", flush=True)
