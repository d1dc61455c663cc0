// mysql2: query() (the text protocol) and execute() (the binary protocol:
// COM_STMT_PREPARE once per connection and statement text, then
// COM_STMT_EXECUTE with that id), its pool, transactions, multi-result sets,
// large results and the binary types. Every scenario runs through the agent
// and directly on the origin and the two must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import {
	checkBackends, errorOf, fieldsOf, normalize, onBoth, parallel, poolSize, rejection, sha1, ORIGIN_LIMIT,
} from './common.mjs';

async function withConn(conn, extra, fn) {
	const c = await mysql.createConnection({ ...conn, connectTimeout: 15000, ...extra });
	try {
		return await fn(c);
	} finally {
		await c.end();
	}
}

// The parts of an OK packet a client sees (ResultSetHeader).
function okOf(h) {
	return {
		affectedRows: h.affectedRows, insertId: h.insertId, warningStatus: h.warningStatus,
		serverStatus: h.serverStatus, info: h.info, changedRows: h.changedRows,
	};
}

// A result of query()/execute() with multipleStatements: one entry per result
// set (rows and fields) or OK packet.
function resultsOf([results, fields]) {
	const isMulti = Array.isArray(results)
		&& results.some((r) => Array.isArray(r) || r?.constructor?.name === 'ResultSetHeader');
	if (!Array.isArray(results)) return [{ ok: okOf(results) }];
	if (!isMulti) return [{ rows: normalize(results), fields: fieldsOf(fields) }];
	return results.map((r, i) => (Array.isArray(r)
		? { rows: normalize(r), fields: fieldsOf(fields[i]) }
		: { ok: okOf(r) }));
}

test('query(): the text protocol, values and column definitions', async () => {
	const result = await onBoth((conn) => withConn(conn, {}, async (c) => {
		const [rows, fields] = await c.query(`
			select 1 as i, -9223372036854775808 as big, 2.5 as dec_lit, 1e3 as dbl, 'text' as t,
				null as nul, x'00ff10' as bin, cast('2024-02-29 23:59:59.123456' as datetime(6)) as dt,
				cast(12.3400 as decimal(30,10)) as d, _utf8mb4'snow ☃ 😀' as u,
				database() as db, current_user() as who`);
		const [vars] = await c.query(`select @@autocommit as ac, @@character_set_client as csc,
			@@character_set_results as csr, @@collation_connection as coll, @@in_transaction as it`);
		const [esc] = await c.query('select ? as a, ? as b, ? as c, ? as d', ['it\'s', 42, null, Buffer.from([0, 39, 92])]);
		return { rows: normalize(rows), fields: fieldsOf(fields), vars, esc: normalize(esc) };
	}));
	assert.equal(result.rows[0].u, 'snow ☃ 😀', 'utf8mb4 round trip');
	assert.equal(result.rows[0].d, '12.3400000000');
	assert.equal(result.vars[0].ac, 1);
	assert.equal(result.vars[0].it, 0, 'not in a transaction after connecting');
	assert.equal(result.esc[0].a, 'it\'s');
	assert.equal(result.esc[0].d, 'Buffer(00275c)');
});

test('execute(): one statement reused across 60 transactions while other clients rotate origin connections', async () => {
	const others = ORIGIN_LIMIT + 1;
	const result = await onBoth((conn, target) => withConn(conn, {}, async (setup) => {
		const name = `m2_exec_${target}`;
		await setup.query(`drop table if exists ${name}`);
		await setup.query(`create table ${name} (id int auto_increment primary key, client int not null, n int not null)`);
		const ids = await parallel(others + 1, (client) => withConn(conn, {}, async (c) => {
			const seen = [];
			const counts = [];
			const rounds = client === 0 ? 60 : 30;
			for (let i = 0; i < rounds; i++) {
				await c.beginTransaction();
				await c.execute(`insert into ${name} (client, n) values (?, ?)`, [client, i]);
				const [rows] = await c.execute(
					`select count(*) as c, sum(n) as s, connection_id() as cid from ${name} where client = ?`, [client]);
				await c.commit();
				seen.push(rows[0].cid);
				counts.push([rows[0].c, rows[0].s]);
			}
			// the last one outside a transaction, too (autocommit)
			const [[last]] = await c.execute(`select count(*) as c from ${name} where client = ?`, [client]);
			return { seen, counts, last: last.c };
		}));
		checkBackends(target, ids.map((r) => r.seen));
		const [[total]] = await setup.execute(`select count(*) as c, count(distinct client) as k from ${name}`);
		return { counts: ids.map((r) => [r.counts, r.last]), total };
	}));
	assert.equal(result.total.c, 60 + others * 30);
	assert.deepEqual(result.counts[0][0][59], [60, String(59 * 60 / 2)], 'count and sum after 60 transactions');
});

test('execute(): prepare errors, parameter counts and statement reuse after an error', async () => {
	const result = await onBoth((conn) => withConn(conn, {}, async (c) => {
		const syntax = errorOf(await rejection(c.execute('selec 1'), 'a syntax error in prepare'));
		const missing = errorOf(await rejection(c.execute('select * from no_such_table_here where a = ?', [1]), 'an unknown table'));
		const [a] = await c.execute('select ? + 1 as v, ? as s', [41, 'x']);
		const div = await c.execute('select 1 / ? as v', [0]);
		const [b] = await c.execute('select ? + 1 as v, ? as s', [1, 'y']);
		return { syntax, missing, a, div: div[0], b };
	}));
	assert.equal(result.syntax.errno, 1064);
	assert.equal(result.missing.errno, 1146);
	assert.deepEqual(result.a, [{ v: 42, s: 'x' }]);
});

test('prepare(), close and re-prepare; many distinct statements closed by the driver\'s LRU', async () => {
	const result = await onBoth((conn) => withConn(conn, {}, async (c) => {
		// explicitly: COM_STMT_PREPARE, two COM_STMT_EXECUTE, COM_STMT_CLOSE
		const stmt = await c.prepare('select ? as a, ? * 2 as b');
		const [first] = await stmt.execute(['x', 21]);
		const [second] = await stmt.execute([null, 0.5]);
		// the COM_STMT_PREPARE OK: its parameter and column counts
		const params = [stmt.statement.parameters.length, stmt.statement.columns.length];
		stmt.close();
		// the same text again after the close: prepared anew
		const [again] = await c.execute('select ? as a, ? * 2 as b', ['y', 1]);
		c.unprepare('select ? as a, ? * 2 as b');
		const [third] = await c.execute('select ? as a, ? * 2 as b', ['z', 2]);
		return { first, second, params, again, third };
	}));
	assert.deepEqual(result.first, [{ a: 'x', b: 42 }]);
	assert.deepEqual(result.params, [2, 2]);
	assert.deepEqual(result.third, [{ a: 'z', b: 4 }]);

	// Clients that each prepare 400 distinct statements but keep at most 40
	// (mysql2 closes the least recently used): the origin
	// (max_prepared_stmt_count = 1000 in t/110) never holds more than the
	// clients keep, through the agent as directly, so none of them fails
	// with ER_MAX_PREPARED_STMT_COUNT_REACHED (1461).
	const sums = await onBoth((conn) => parallel(3, (client) => withConn(conn, { maxPreparedStatements: 40 }, async (c) => {
		let sum = 0;
		for (let i = 0; i < 400; i++) {
			const [[row]] = await c.execute(`select ? + ${i} as v /* client ${client} */`, [client]);
			sum += row.v;
		}
		return sum;
	})));
	assert.deepEqual(sums, [0, 1, 2].map((k) => 400 * k + 399 * 400 / 2));
});

test('pool: more queries at once than the pool has connections', async () => {
	const result = await onBoth(async (conn, target) => {
		// (under session pooling a pool as an application would have it: no
		// more connections than the origin's, each holding one for good)
		const pool = mysql.createPool({ ...conn, connectionLimit: poolSize(6), connectTimeout: 15000 });
		try {
			const name = `m2_pool_${target}`;
			await pool.query(`drop table if exists ${name}`);
			await pool.query(`create table ${name} (k int primary key, v varchar(20))`);
			const answers = await parallel(40, async (i) => {
				if (i % 2) {
					const [rows] = await pool.execute('select ? * 2 as twice, ? as label', [i, `w${i}`]);
					return rows[0];
				}
				const [rows] = await pool.query('select ? * 3 as thrice', [i]);
				return rows[0];
			});
			// transactions on connections taken from the pool
			await parallel(8, async (i) => {
				const c = await pool.getConnection();
				try {
					await c.beginTransaction();
					await c.execute(`insert into ${name} values (?, ?)`, [i, `v${i}`]);
					if (i % 2) await c.rollback();
					else await c.commit();
				} finally {
					c.release();
				}
			});
			const [rows] = await pool.query(`select k, v from ${name} order by k`);
			return { answers, rows };
		} finally {
			await pool.end();
		}
	});
	assert.equal(result.answers.length, 40);
	assert.deepEqual(result.rows.map((r) => r.k), [0, 2, 4, 6], 'the committed ones only');
});

test('transactions: commit, rollback, autocommit off', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `m2_tx_${target}`;
		await c.query(`drop table if exists ${name}`);
		await c.query(`create table ${name} (id int primary key, v text) engine=InnoDB`);
		await c.beginTransaction();
		await c.query(`insert into ${name} values (1, 'rolled back')`);
		const [[inside]] = await c.query(`select count(*) as n, @@in_transaction as it from ${name}`);
		await c.rollback();
		const [[afterRollback]] = await c.query(`select count(*) as n, @@in_transaction as it from ${name}`);
		await c.beginTransaction();
		await c.execute(`insert into ${name} values (?, ?)`, [2, 'committed']);
		await c.commit();
		// autocommit off: a transaction begins with the first statement and
		// lasts until COMMIT
		await c.query('set autocommit = 0');
		await c.query(`insert into ${name} values (3, 'implicit, rolled back')`);
		const [[implicit]] = await c.query('select @@in_transaction as it, @@autocommit as ac');
		await c.query('rollback');
		await c.query(`insert into ${name} values (4, 'implicit, committed')`);
		await c.query('commit');
		await c.query('set autocommit = 1');
		const [rows] = await c.query(`select id, v from ${name} order by id`);
		return { inside, afterRollback, implicit, rows };
	}));
	assert.deepEqual(result.inside, { n: 1, it: 1 });
	assert.deepEqual(result.afterRollback, { n: 0, it: 0 });
	assert.deepEqual(result.implicit, { it: 1, ac: 0 });
	assert.deepEqual(result.rows.map((r) => r.id), [2, 4]);
});

test('an error inside a transaction, then rollback', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `m2_txerr_${target}`;
		await c.query(`drop table if exists ${name}`);
		await c.query(`create table ${name} (id int primary key) engine=InnoDB`);
		await c.beginTransaction();
		await c.execute(`insert into ${name} values (?)`, [1]);
		const dup = errorOf(await rejection(c.execute(`insert into ${name} values (?)`, [1]), 'a duplicate key'));
		const bad = errorOf(await rejection(c.query('select no_such_column from dual'), 'an unknown column'));
		// MySQL keeps the transaction (and its first insert) after an error
		const [[still]] = await c.query(`select count(*) as n, @@in_transaction as it from ${name}`);
		await c.rollback();
		const [[after]] = await c.query(`select count(*) as n, @@in_transaction as it from ${name}`);
		return { dup, bad, still, after };
	}));
	assert.equal(result.dup.errno, 1062);
	assert.equal(result.dup.sqlState, '23000');
	assert.deepEqual(result.still, { n: 1, it: 1 });
	assert.deepEqual(result.after, { n: 0, it: 0 });
});

test('a client that disappears mid-transaction: its transaction is rolled back, its locks go', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (other) => {
		const name = `m2_gone_${target}`;
		await other.query(`drop table if exists ${name}`);
		await other.query(`create table ${name} (id int primary key, v text) engine=InnoDB`);
		await other.query(`insert into ${name} values (1, 'before')`);
		const gone = await mysql.createConnection({ ...conn, connectTimeout: 15000 });
		await gone.beginTransaction();
		await gone.query(`update ${name} set v = 'never committed' where id = 1`);
		await gone.query(`insert into ${name} values (2, 'never committed')`);
		// the socket closed without COM_QUIT, the transaction open
		gone.destroy();
		// the row lock it held goes with its session (a wait longer than this
		// one fails with ER_LOCK_WAIT_TIMEOUT, 1205)
		await other.query('set session innodb_lock_wait_timeout = 20');
		await other.beginTransaction();
		const [upd] = await other.query(`update ${name} set v = 'after' where id = 1`);
		await other.query(`insert into ${name} values (2, 'after')`);
		await other.commit();
		const [rows] = await other.query(`select id, v from ${name} order by id`);
		return { changed: upd.changedRows, rows };
	}));
	assert.deepEqual(result.rows, [{ id: 1, v: 'after' }, { id: 2, v: 'after' }]);
});

test('multi-result sets: multipleStatements and a procedure returning two result sets', async () => {
	const result = await onBoth((conn, target) => withConn(conn, { multipleStatements: true }, async (c) => {
		const name = `m2_multi_${target}`;
		const proc = `m2_two_${target}`;
		await c.query(`drop table if exists ${name}; drop procedure if exists ${proc}`);
		await c.query(`create table ${name} (id int primary key, v varchar(10))`);
		await c.query(`create procedure ${proc}(in k int)
			begin
				select k as k1;
				select k * 2 as k2, 'two' as t union all select k * 3, 'three';
			end`);
		const multi = resultsOf(await c.query(`select 1 as a; select 'x' as b, 2 as c;
			insert into ${name} values (1, 'one'), (2, 'two'); select count(*) as n from ${name}`));
		const call = resultsOf(await c.query(`call ${proc}(?)`, [5]));
		const callExec = resultsOf(await c.execute(`call ${proc}(?)`, [7]));
		// an error in the middle of a multi-statement: what came before it
		// stands, the rest is not run
		const mid = errorOf(await rejection(
			c.query(`insert into ${name} values (3, 'three'); select nope from ${name}; insert into ${name} values (4, 'four')`),
			'an error in the second statement'));
		const [rows] = await c.query(`select id from ${name} order by id`);
		// and the connection is usable after all of it
		const [[ping]] = await c.query('select 42 as answer');
		return { multi, call, callExec, mid, rows, ping };
	}));
	assert.equal(result.multi.length, 4);
	assert.deepEqual(result.multi[0].rows, [{ a: 1, 'a:type': 'number' }]);
	assert.equal(result.call.length, 3, 'two result sets and the CALL\'s OK');
	assert.deepEqual(result.call[1].rows.map((r) => r.k2), [10, 15]);
	assert.deepEqual(result.callExec[0].rows, [{ k1: 7, 'k1:type': 'number' }]);
	assert.equal(result.mid.errno, 1054);
	assert.deepEqual(result.rows.map((r) => r.id), [1, 2, 3]);
	assert.deepEqual(result.ping, { answer: 42 });
});

// A deterministic pseudo-random buffer (the same on both runs).
function bytes(n, seed) {
	const out = Buffer.alloc(n);
	let x = seed >>> 0 || 1;
	for (let i = 0; i < n; i++) {
		x ^= x << 13; x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5; x >>>= 0;
		out[i] = x & 0xff;
	}
	return out;
}

test('large results: 100k rows through query() and execute()', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `m2_big_${target}`;
		await c.query(`drop table if exists ${name}`);
		await c.query(`create table ${name} (id int primary key, s varchar(40), f double)`);
		await c.query(`insert into ${name}
			with recursive d(n) as (select 0 union all select n + 1 from d where n < 9)
			select a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n, concat('row ', a.n, b.n, c.n, e.n, f.n, ' ', repeat('x', a.n)), (a.n + b.n) / 7
			from d a, d b, d c, d e, d f`);
		const [text] = await c.query(`select id, s, f from ${name} order by id`);
		const [bin] = await c.execute(`select id, s, f from ${name} where id >= ? order by id`, [0]);
		return {
			n: text.length,
			text: sha1(JSON.stringify(text)),
			bin: sha1(JSON.stringify(bin)),
			last: text[text.length - 1],
		};
	}));
	assert.equal(result.n, 100000);
	assert.equal(result.text, result.bin, 'the same rows through both protocols');
	assert.equal(result.last.id, 99999);
});

test('large values: a 20 MB BLOB in and out, through both protocols', async () => {
	const blob = bytes(20 * 1024 * 1024 + 17, 7);
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `m2_blob_${target}`;
		await c.query(`drop table if exists ${name}`);
		await c.query(`create table ${name} (id int primary key, b longblob)`);
		// binary protocol: the value inside COM_STMT_EXECUTE, over 16 MB, so
		// split into several packets
		await c.execute(`insert into ${name} values (?, ?)`, [1, blob]);
		// text protocol: X'...' escaped, 40 MB of statement
		await c.query(`insert into ${name} values (?, ?)`, [2, blob]);
		const [sums] = await c.query(`select id, length(b) as len, sha1(b) as h from ${name} order by id`);
		const [text] = await c.query(`select b from ${name} where id = 1`);
		const [bin] = await c.execute(`select b from ${name} where id = ?`, [2]);
		const [[after]] = await c.query('select 1 as still_fine');
		return {
			sums,
			text: [text[0].b.length, sha1(text[0].b)],
			bin: [bin[0].b.length, sha1(bin[0].b)],
			after,
		};
	}));
	const want = [blob.length, sha1(blob)];
	assert.deepEqual(result.sums.map((r) => [r.len, r.h]), [want, want]);
	assert.deepEqual(result.text, want);
	assert.deepEqual(result.bin, want);
});

test('binary types through execute() and query(): DECIMAL(30,10), DATETIME(6), JSON, BLOB, utf8mb4, NULL', async () => {
	const values = [
		[1, '12345678901234567890.0123456789', '2024-02-29 23:59:59.123456', '{"a": [1, 2.5, "x"], "b": null}',
			Buffer.from([0, 1, 2, 254, 255]), 'emoji 😀🎉 and ☃ ünïcødé', 7, 1.25],
		[2, '-0.0000000001', '1000-01-01 00:00:00.000001', '[]', Buffer.alloc(0), '', -2147483648, -0.5],
		[3, null, null, null, null, null, null, null],
	];
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `m2_types_${target}`;
		await c.query(`drop table if exists ${name}`);
		await c.query(`create table ${name} (
			id int primary key, d decimal(30,10), dt datetime(6), j json, b blob,
			u varchar(100) character set utf8mb4, i int, f double)`);
		for (const v of values) {
			await c.execute(`insert into ${name} values (?, ?, ?, ?, ?, ?, ?, ?)`, v);
			await c.query(`insert into ${name} values (?, ?, ?, ?, ?, ?, ?, ?)`, [v[0] + 10, ...v.slice(1)]);
		}
		const sel = `select id, d, dt, j, b, u, i, f from ${name} order by id`;
		const out = {};
		for (const dateStrings of [true, false]) {
			const [q, qf] = await c.query({ sql: sel, dateStrings });
			const [e, ef] = await c.execute({ sql: `${sel.replace('order by', 'where id > ? order by')}`, dateStrings }, [0]);
			out[`query:${dateStrings}`] = { rows: normalize(q), fields: fieldsOf(qf) };
			out[`execute:${dateStrings}`] = { rows: normalize(e), fields: fieldsOf(ef) };
		}
		// a JSON and DECIMAL computed on the server, as binary results
		const [[calc]] = await c.execute(`select json_extract(j, '$.a[1]') as x, d * 2 as d2, microsecond(dt) as us
			from ${name} where id = ?`, [1]);
		out.calc = calc;
		return out;
	}));
	for (const key of ['query:true', 'execute:true']) {
		const rows = result[key].rows;
		assert.equal(rows.length, 6, key);
		const r1 = rows.find((r) => r.id === 1);
		assert.equal(r1.d, '12345678901234567890.0123456789', `${key}: DECIMAL(30,10)`);
		assert.equal(r1.dt, '2024-02-29 23:59:59.123456', `${key}: DATETIME(6)`);
		assert.equal(r1.b, 'Buffer(000102feff)', `${key}: BLOB`);
		assert.equal(r1.u, 'emoji 😀🎉 and ☃ ünïcødé', `${key}: utf8mb4`);
		const r3 = rows.find((r) => r.id === 13);
		for (const col of ['d', 'dt', 'j', 'b', 'u', 'i', 'f']) assert.equal(r3[col], null, `${key}: NULL ${col}`);
	}
	assert.equal(result.calc.us, 123456);
});

test('connection options: the client\'s character set, ping', async () => {
	const result = await onBoth((conn) => withConn(conn, { charset: 'LATIN1_SWEDISH_CI' }, async (c) => {
		const [[cs]] = await c.query('select @@character_set_client as csc, @@collation_connection as coll, database() as db');
		const [[latin]] = await c.query('select hex(?) as h, ? as back', ['café', 'café']);
		await c.ping();
		const [[after]] = await c.query('select 1 as still_there');
		return { cs, latin, after };
	}));
	assert.equal(result.cs.csc, 'latin1');
	assert.equal(result.latin.h, '636166E9', 'sent as latin1');
	assert.equal(result.latin.back, 'café');
});

test('changeUser (COM_CHANGE_USER): the session starts over, in the database named', async () => {
	const result = await onBoth((conn) => withConn(conn, {}, async (c) => {
		await c.query('set @m2_var = 5, session sql_mode = \'ANSI_QUOTES\'');
		// back to the same user and database (through the agent: the
		// config's name), with another character set
		await c.changeUser({ user: conn.user, password: conn.password, database: conn.database, charset: 'LATIN1_SWEDISH_CI' });
		const [[after]] = await c.query('select @m2_var as v, @@sql_mode like \'%ANSI_QUOTES%\' as ansi, @@character_set_client as csc, database() as db');
		return after;
	}));
	assert.equal(result.v, null, 'user variables are gone after COM_CHANGE_USER');
	assert.equal(result.ansi, 0, 'and the session\'s settings');
	assert.equal(result.csc, 'latin1');
});
