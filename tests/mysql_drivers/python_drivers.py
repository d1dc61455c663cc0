#!/usr/bin/python3
"""PyMySQL and MySQLdb (mysqlclient) through the agent and on the origin.

    /usr/bin/python3 python_drivers.py pymysql|MySQLdb [unittest options]

The target comes from the environment, as for the node tests
(common.mjs): MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD,
MYSQL_DATABASE (the agent, or the origin for a control run), ORIGIN_* (the
origin itself), HD_POOL_MODE (transaction | session | direct) and
HD_ORIGIN_LIMIT. Every scenario runs on both and the results must agree;
tables get the target's name as a suffix. Both drivers interpolate `%s`
parameters on the client and send COM_QUERY; both are PEP 249 drivers,
with autocommit off unless asked (a session whose every statement is in a
transaction until commit or rollback).
"""
import decimal
import os
import sys
import threading
import unittest


def target(prefix):
    env = os.environ
    missing = [k for k in ('HOST', 'PORT', 'USER', 'DATABASE') if not env.get(f'{prefix}_{k}')]
    if missing:
        sys.exit(f'set {", ".join(prefix + "_" + k for k in missing)}')
    return dict(host=env[f'{prefix}_HOST'], port=int(env[f'{prefix}_PORT']),
                user=env[f'{prefix}_USER'], password=env.get(f'{prefix}_PASSWORD', ''),
                database=env[f'{prefix}_DATABASE'])


AGENT = target('MYSQL')
ORIGIN = target('ORIGIN')
# the origin database the agent's config starts its sessions in
AGENT['database_on_origin'] = ORIGIN['database']
POOL_MODE = os.environ.get('HD_POOL_MODE', 'transaction')
ORIGIN_LIMIT = int(os.environ.get('HD_ORIGIN_LIMIT', '2'))
DRIVER = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith('-') else 'pymysql'

if DRIVER == 'pymysql':
    import pymysql as db
    import pymysql.constants.CLIENT as CLIENT

    def connect(t, **kw):
        return db.connect(host=t['host'], port=t['port'], user=t['user'], password=t['password'],
                          database=t['database'], charset='utf8mb4', connect_timeout=15,
                          client_flag=CLIENT.MULTI_STATEMENTS, **kw)
elif DRIVER == 'MySQLdb':
    import MySQLdb as db
    import MySQLdb.constants.CLIENT as CLIENT

    def connect(t, **kw):
        return db.connect(host=t['host'], port=t['port'], user=t['user'], password=t['password'],
                          database=t['database'], charset='utf8mb4', connect_timeout=15,
                          client_flag=CLIENT.MULTI_STATEMENTS, **kw)
else:
    sys.exit(f'unknown driver {DRIVER!r}: pymysql or MySQLdb')


def on_both(test, scenario):
    """Runs scenario(target, name) on the agent and the origin; checks the
    results are equal and returns the agent's."""
    results = {name: scenario(t, name) for name, t in (('agent', AGENT), ('origin', ORIGIN))}
    test.assertEqual(results['agent'], results['origin'],
                     'the same operations give the same results through the agent and on the origin')
    return results['agent']


def clients_at_once(n, body, **kw):
    """Runs body(i, conn) for i in 0 .. n - 1 in threads at once, each on a
    connection of its own to MYSQL_* (connect() options in kw); returns the
    failures: what a body returned (a text) or raised."""
    failures = []

    def client(i):
        try:
            conn = connect(AGENT, **kw)
        except Exception as e:  # noqa: BLE001 (reported as a failure)
            failures.append(f'client {i} connecting: {e!r}')
            return
        try:
            failure = body(i, conn)
            if failure:
                failures.append(f'client {i}: {failure}')
        except Exception as e:  # noqa: BLE001 (reported as a failure)
            failures.append(f'client {i}: {e!r}')
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return failures


def error_of(e):
    """(errno, message) of a server error, the same from both."""
    return (e.args[0], e.args[1])


class Drivers(unittest.TestCase):
    def run_sql(self, conn, sql, args=None):
        cur = conn.cursor()
        cur.execute(sql, args)
        rows = cur.fetchall()
        desc = [(d[0], d[1]) for d in (cur.description or [])]
        return list(rows), desc, cur.rowcount

    def test_query_types(self):
        def scenario(t, name):
            conn = connect(t)
            try:
                cur = conn.cursor()
                cur.execute(f'drop table if exists py_types_{name}')
                cur.execute(f'''create table py_types_{name} (id int primary key, d decimal(30,10),
                    dt datetime(6), j json, b blob, u varchar(50) character set utf8mb4, n bigint)''')
                cur.execute(f'insert into py_types_{name} values (%s, %s, %s, %s, %s, %s, %s)',
                            (1, decimal.Decimal('12345678901234567890.0123456789'), '2024-02-29 23:59:59.123456',
                             '{"a": [1, "x"]}', b'\x00\x01\'\\\xff', 'emoji 😀 ☃', -9223372036854775808))
                cur.execute(f'insert into py_types_{name} values (%s, %s, %s, %s, %s, %s, %s)', (2,) + (None,) * 6)
                conn.commit()
                rows, desc, _ = self.run_sql(conn, f'select * from py_types_{name} order by id')
                lit, ldesc, _ = self.run_sql(conn, "select %s as s, %s as i, %s as f, %s as n, 'it''s' as q",
                                             ('a%sb', 3, 2.5, None))
                return rows, desc, lit, ldesc
            finally:
                conn.close()
        rows, desc, lit, _ = on_both(self, scenario)
        self.assertEqual(rows[0][1], decimal.Decimal('12345678901234567890.0123456789'))
        self.assertEqual(str(rows[0][2]), '2024-02-29 23:59:59.123456')
        self.assertEqual(rows[0][4], b'\x00\x01\'\\\xff')
        self.assertEqual(rows[0][5], 'emoji 😀 ☃')
        self.assertEqual(rows[1][1:], (None,) * 6)
        self.assertEqual(lit[0][0], 'a%sb')

    def test_executemany(self):
        def scenario(t, name):
            conn = connect(t)
            try:
                cur = conn.cursor()
                cur.execute(f'drop table if exists py_many_{name}')
                cur.execute(f'create table py_many_{name} (id int primary key, v varchar(20))')
                # INSERT ... VALUES: both drivers send one multi-row INSERT
                n = cur.executemany(f'insert into py_many_{name} (id, v) values (%s, %s)',
                                    [(i, f'v{i}') for i in range(500)])
                # anything else: one statement per row
                u = cur.executemany(f'update py_many_{name} set v = %s where id = %s',
                                    [(f'u{i}', i) for i in range(0, 500, 50)])
                conn.commit()
                rows, _, _ = self.run_sql(conn, f'select count(*), sum(id), max(v) from py_many_{name}')
                return n, u, rows
            finally:
                conn.close()
        n, u, rows = on_both(self, scenario)
        self.assertEqual(n, 500)
        self.assertEqual(u, 10)
        self.assertEqual(rows[0][0], 500)

    def test_transactions(self):
        def scenario(t, name):
            conn = connect(t)   # autocommit off (PEP 249)
            try:
                cur = conn.cursor()
                cur.execute(f'drop table if exists py_tx_{name}')
                cur.execute(f'create table py_tx_{name} (id int primary key) engine=InnoDB')
                cur.execute(f'insert into py_tx_{name} values (%s)', (1,))
                inside, _, _ = self.run_sql(conn, 'select @@in_transaction, @@autocommit')
                conn.rollback()
                cur.execute(f'insert into py_tx_{name} values (%s)', (2,))
                try:
                    cur.execute(f'insert into py_tx_{name} values (%s)', (2,))
                    dup = None
                except db.IntegrityError as e:
                    dup = error_of(e)
                conn.commit()   # the first insert of 2 stays
                cur.execute(f'insert into py_tx_{name} values (%s)', (3,))
                try:
                    cur.execute('select * from py_no_such_table')
                    missing = None
                except db.ProgrammingError as e:
                    missing = error_of(e)
                conn.rollback()
                conn.autocommit(True)
                cur.execute(f'insert into py_tx_{name} values (%s)', (4,))
                after, _, _ = self.run_sql(conn, 'select @@in_transaction, @@autocommit')
                rows, _, _ = self.run_sql(conn, f'select id from py_tx_{name} order by id')
                return inside, dup, missing, after, rows
            finally:
                conn.close()
        inside, dup, missing, after, rows = on_both(self, scenario)
        self.assertEqual(inside, [(1, 0)])
        self.assertEqual(dup[0], 1062)
        self.assertEqual(missing[0], 1146)
        self.assertEqual(after, [(0, 1)])
        self.assertEqual(rows, [(2,), (4,)])

    def test_warnings(self):
        def scenario(t, name):
            conn = connect(t, autocommit=True)
            try:
                cur = conn.cursor()
                cur.execute(f'drop table if exists py_warn_{name}')
                cur.execute(f'create table py_warn_{name} (t tinyint, s varchar(3))')
                cur.execute("set session sql_mode = ''")
                cur.execute(f'insert into py_warn_{name} values (%s, %s)', (300, 'abcdef'))
                # the count (in the OK packet and @@warning_count) and
                # the list: both the previous statement's
                count = cur.execute('select @@warning_count') and cur.fetchall()
                shown = conn.show_warnings()
                cur.execute("select cast('12abc' as signed)")
                rows = cur.fetchall()
                count2 = cur.execute('select @@warning_count') and cur.fetchall()
                shown2 = conn.show_warnings()
                return count, [tuple(w) for w in shown], rows, count2, [tuple(w) for w in shown2]
            finally:
                conn.close()
        count, shown, rows, count2, shown2 = on_both(self, scenario)
        self.assertEqual(count, ((2,),))
        self.assertEqual([w[1] for w in shown], [1264, 1265])
        self.assertEqual(rows, ((12,),))
        self.assertEqual(count2, ((1,),))
        self.assertEqual(shown2[0][1], 1292)

    def test_warnings_are_each_clients_own(self):
        """SHOW WARNINGS in autocommit mode, many clients at once: each sees
        the warning of its own previous statement, never another's. Under
        transaction pooling the agent may refuse it instead (ER 1105, when
        the origin connection that ran the previous statement has served
        another client since: the diagnostics are no longer the client's)."""
        def body(i, conn):
            cur = conn.cursor()
            for k in range(20):
                token = f'{i}x{k}'
                cur.execute('select cast(%s as signed)', (f'{i}{k}abc{token}',))
                cur.fetchall()
                try:
                    messages = [w[2] for w in conn.show_warnings()]
                except db.OperationalError as e:
                    if POOL_MODE == 'transaction' and e.args[0] == 1105 and 'served another client' in e.args[1]:
                        continue
                    raise
                if len(messages) != 1 or token not in messages[0]:
                    return f'round {k}: SHOW WARNINGS gave {messages!r}'
            return None
        self.assertEqual(clients_at_once(ORIGIN_LIMIT * 3, body, autocommit=True), [])

    def test_session_state_is_each_clients_own(self):
        """Clients at once, each with its own session state, in autocommit
        mode (every statement may go to another origin connection under
        transaction pooling): a tracked SET (time_zone), USE, a user
        variable, a temporary table and LAST_INSERT_ID() (the last three pin
        the client to its origin connection). Each client sees its own
        state in every round, never another's nor a reset one."""
        conn = connect(AGENT, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute('drop table if exists py_ids')
            cur.execute('create table py_ids (id int auto_increment primary key, client int)')
        finally:
            conn.close()

        def body(i, conn):
            cur = conn.cursor()
            zone = f'+0{i}:{15 * (i % 4):02d}'
            db_name = 'app2' if i % 2 else AGENT['database_on_origin']
            cur.execute('set time_zone = %s', (zone,))
            cur.execute(f'use {db_name}')
            cur.execute('set @mine = %s', (f'client {i}',))
            cur.execute('create temporary table py_tmp (v int)')
            cur.execute('insert into py_tmp values (%s)', (i,))
            cur.execute(f'insert into {AGENT["database_on_origin"]}.py_ids (client) values (%s)', (i,))
            cur.execute('select last_insert_id()')
            last = cur.fetchone()[0]
            cur.execute(f'select id from {AGENT["database_on_origin"]}.py_ids where client = %s', (i,))
            want_id = cur.fetchone()[0]
            if last != want_id:
                return f'LAST_INSERT_ID() {last}, its row has id {want_id}'
            want = (zone, db_name, f'client {i}', i, want_id)
            for k in range(15):
                cur.execute('select @@time_zone, database(), @mine, (select max(v) from py_tmp), last_insert_id()')
                got = cur.fetchone()
                if tuple(got) != want:
                    return f'round {k}: {got!r}, not its own {want!r}'
            return None
        self.assertEqual(clients_at_once(ORIGIN_LIMIT * 2, body, autocommit=True), [])

    def test_multi_results_and_callproc(self):
        def scenario(t, name):
            conn = connect(t, autocommit=True)
            try:
                cur = conn.cursor()
                cur.execute(f'drop procedure if exists py_two_{name}')
                cur.execute(f'''create procedure py_two_{name}(in k int)
                    begin
                        select k as k1;
                        select k * 2 as k2 union all select k * 3;
                    end''')
                sets = []
                cur.callproc(f'py_two_{name}', (5,))
                while True:
                    sets.append(list(cur.fetchall()) if cur.description else None)
                    if not cur.nextset():
                        break
                cur.execute('select 1; select 2, 3')
                multi = [list(cur.fetchall())]
                while cur.nextset():
                    multi.append(list(cur.fetchall()))
                rows, _, _ = self.run_sql(conn, 'select %s', ('after',))
                return sets, multi, rows
            finally:
                conn.close()
        sets, multi, rows = on_both(self, scenario)
        self.assertEqual(sets[0], [(5,)])
        self.assertEqual(sets[1], [(10,), (15,)])
        self.assertEqual(multi, [[(1,)], [(2, 3)]])
        self.assertEqual(rows, [('after',)])

    def test_origin_threads(self):
        """Clients in transactions at once, more than the origin's
        connections: no more origin threads than the limit, and under
        transaction pooling a client moves between them."""
        if POOL_MODE == 'direct':
            self.skipTest('a control run on the origin')
        seen = {}

        def body(i, conn):
            ids = []
            cur = conn.cursor()
            for _ in range(20):
                cur.execute('select connection_id()')
                ids.append(cur.fetchone()[0])
                conn.commit()
            seen[i] = ids
        self.assertEqual(clients_at_once(ORIGIN_LIMIT * 3, body), [])
        self.assertEqual(len(seen), ORIGIN_LIMIT * 3, 'every client finished')
        everyone = set(x for ids in seen.values() for x in ids)
        self.assertLessEqual(len(everyone), ORIGIN_LIMIT)
        if POOL_MODE == 'transaction':
            self.assertTrue(any(len(set(ids)) > 1 for ids in seen.values()),
                            'a client moved between origin connections')


if __name__ == '__main__':
    print(f'{DRIVER} {getattr(db, "__version__", getattr(db, "version_info", "?"))}; '
          f'target {AGENT["host"]}:{AGENT["port"]}/{AGENT["database"]} ({POOL_MODE})', file=sys.stderr)
    unittest.main(verbosity=2)
