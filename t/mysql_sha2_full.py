#!/usr/bin/python3
# caching_sha2_password through the agent when its greeting asks for it
# (mysql_auth_plugin = caching_sha2_password): the config's user on the fast
# path; another user (checked against its looked-up hash) with the full
# authentication, over TLS (the password in the clear inside TLS) and on a
# plain connection (encrypted with the agent's public key, which PyMySQL asks
# for); wrong passwords refused both ways. Run by t/107_mysql_sha2_full.pl;
# prints "ok - ..." / "not ok - ...: why" and "done".
#
# Environment: AGENT_PORT, PW (the config user's), BOB_PW, CONFIG.
import os
import sys
import ssl

import pymysql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklines import say  # noqa: E402

AGENT = int(os.environ["AGENT_PORT"])
PW = os.environ["PW"]
BOB_PW = os.environ["BOB_PW"]
CONFIG = os.environ["CONFIG"]
NO_VERIFY = ssl.create_default_context()
NO_VERIFY.check_hostname = False
NO_VERIFY.verify_mode = ssl.CERT_NONE


def login(user, password, tls):
    """CURRENT_USER() and the TLS cipher the agent's session reports, or the error code."""
    try:
        c = pymysql.connect(host="127.0.0.1", port=AGENT, user=user, password=password,
                            database=CONFIG, ssl=NO_VERIFY if tls else None)
    except pymysql.MySQLError as e:
        return e.args[0]
    with c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        who = cur.fetchone()[0]
    plugin = c._auth_plugin_name
    c.close()
    return (who.split("@")[0], plugin)


for tls in (False, True):
    how = "TLS" if tls else "plain, RSA"
    got = login("app", PW, tls)
    say(got == ("app", "caching_sha2_password"),
        "the config's user, caching_sha2_password's fast path (%s)" % how, repr(got))
    got = login("bob", BOB_PW, tls)
    say(got == ("bob", "caching_sha2_password"),
        "another user, caching_sha2_password's full authentication (%s)" % how, repr(got))
    got = login("bob", "wrong-" + BOB_PW, tls)
    say(got == 1045, "another user with a wrong password: 1045 (%s)" % how, repr(got))
    got = login("app", "wrong-" + PW, tls)
    say(got == 1045, "the config's user with a wrong password: 1045 (%s)" % how, repr(got))
print("done", flush=True)
