// mysql (mysqljs, the older driver: the text protocol only, with its own
// client-side escaping): queries, transactions, its pool. Every scenario
// runs through the agent and directly on the origin and the two must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql';
import {
	checkBackends, errorOf, fieldsOf, normalize, onBoth, parallel, poolSize, rejection, ORIGIN_LIMIT,
} from './common.mjs';

// The driver's callbacks as promises: q(sql, values) -> { rows, fields }.
function promised(c) {
	return {
		q: (sql, values) => new Promise((resolve, reject) => {
			// rows as plain objects (not RowDataPacket) for the comparisons
			c.query(sql, values, (err, rows, fields) => (err ? reject(err)
				: resolve({ rows: Array.isArray(rows) ? rows.map((r) => ({ ...r })) : rows, fields })));
		}),
		begin: () => new Promise((resolve, reject) => c.beginTransaction((err) => (err ? reject(err) : resolve()))),
		commit: () => new Promise((resolve, reject) => c.commit((err) => (err ? reject(err) : resolve()))),
		rollback: () => new Promise((resolve, reject) => c.rollback((err) => (err ? reject(err) : resolve()))),
	};
}

async function withConn(conn, extra, fn) {
	// utf8mb4 (the driver's default is utf8mb3, which has no emoji)
	const c = mysql.createConnection({ ...conn, connectTimeout: 15000, charset: 'UTF8MB4_GENERAL_CI', ...extra });
	await new Promise((resolve, reject) => c.connect((err) => (err ? reject(err) : resolve())));
	try {
		return await fn(promised(c));
	} finally {
		await new Promise((resolve) => c.end(() => resolve()));
	}
}

// The parts of an OK packet the driver reports.
function okOf(r) {
	return {
		affectedRows: r.affectedRows, insertId: r.insertId, warningCount: r.warningCount,
		serverStatus: r.serverStatus, message: r.message, changedRows: r.changedRows,
	};
}

test('query: values, escaping, column definitions, OK packets', async () => {
	const result = await onBoth((conn, target) => withConn(conn, { dateStrings: true, supportBigNumbers: true }, async (c) => {
		const name = `my_q_${target}`;
		await c.q(`drop table if exists ${name}`);
		await c.q(`create table ${name} (id int auto_increment primary key, d decimal(30,10), dt datetime(6),
			b blob, u varchar(50) character set utf8mb4, n bigint)`);
		const ins = await c.q(`insert into ${name} set ?`, {
			d: '-98765432109876543210.9876543210', dt: '2023-12-31 23:59:59.999999',
			b: Buffer.from('\0\'\\"'), u: 'ŝnow 😀', n: '9223372036854775807',
		});
		const ins2 = await c.q(`insert into ${name} (d, dt, b, u, n) values (?, ?, ?, ?, ?)`, [null, null, null, null, null]);
		const upd = await c.q(`update ${name} set u = concat(u, '!') where id in (?)`, [[1, 2, 3]]);
		const sel = await c.q(`select * from ${name} order by id`);
		const warn = await c.q('select cast(? as signed) as n', ['12abc']);
		return {
			ins: okOf(ins.rows), ins2: okOf(ins2.rows), upd: okOf(upd.rows),
			rows: normalize(sel.rows), fields: fieldsOf(sel.fields),
			warn: { rows: warn.rows, fields: fieldsOf(warn.fields) },
		};
	}));
	assert.equal(result.ins.insertId, 1);
	assert.equal(result.rows[0].d, '-98765432109876543210.9876543210');
	assert.equal(result.rows[0].dt, '2023-12-31 23:59:59.999999');
	assert.equal(result.rows[0].u, 'ŝnow 😀!');
	assert.equal(result.rows[0].n, '9223372036854775807');
	assert.equal(result.rows[0].b, 'Buffer(00275c22)');
	assert.equal(result.rows[1].u, null);
	assert.equal(result.upd.affectedRows, 2, 'ids 1 and 2 of (1, 2, 3)');
	assert.deepEqual(result.warn.rows, [{ n: 12 }]);
});

test('transactions: commit, rollback, an error inside one', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (c) => {
		const name = `my_tx_${target}`;
		await c.q(`drop table if exists ${name}`);
		await c.q(`create table ${name} (id int primary key) engine=InnoDB`);
		await c.begin();
		await c.q(`insert into ${name} values (1), (2)`);
		await c.rollback();
		await c.begin();
		await c.q(`insert into ${name} values (3)`);
		const dup = errorOf(await rejection(c.q(`insert into ${name} values (3)`), 'a duplicate key'));
		const { rows: [inside] } = await c.q(`select count(*) as n, @@in_transaction as it from ${name}`);
		await c.commit();
		await c.begin();
		await c.q(`insert into ${name} values (4)`);
		const bad = errorOf(await rejection(c.q('select * from my_no_such_table'), 'an unknown table'));
		await c.rollback();
		const { rows } = await c.q(`select id from ${name} order by id`);
		return { dup, inside, bad, rows };
	}));
	assert.equal(result.dup.errno, 1062);
	assert.deepEqual(result.inside, { n: 1, it: 1 });
	assert.equal(result.bad.errno, 1146);
	assert.deepEqual(result.rows, [{ id: 3 }], 'the committed transaction only');
});

test('clients at once in transactions: more than the origin connections', async () => {
	const result = await onBoth((conn, target) => withConn(conn, {}, async (setup) => {
		const name = `my_many_${target}`;
		await setup.q(`drop table if exists ${name}`);
		await setup.q(`create table ${name} (client int, n int, primary key (client, n)) engine=InnoDB`);
		const ids = await parallel(ORIGIN_LIMIT * 3, (client) => withConn(conn, {}, async (c) => {
			const seen = [];
			for (let i = 0; i < 15; i++) {
				await c.begin();
				await c.q(`insert into ${name} values (?, ?)`, [client, i]);
				const { rows: [r] } = await c.q(`select connection_id() as cid, count(*) as n from ${name} where client = ?`, [client]);
				if (i % 3 === 2) await c.rollback();
				else await c.commit();
				seen.push(r.cid);
			}
			return seen;
		}));
		checkBackends(target, ids);
		const { rows } = await setup.q(`select client, count(*) as n from ${name} group by client order by client`);
		return rows;
	}));
	assert.deepEqual(result.map((r) => r.n), Array(ORIGIN_LIMIT * 3).fill(10));
});

test('multipleStatements and a pool', async () => {
	const result = await onBoth(async (conn) => {
		const pool = mysql.createPool({ ...conn, connectionLimit: poolSize(5), multipleStatements: true });
		const pq = (sql, values) => new Promise((resolve, reject) => {
			pool.query(sql, values, (err, rows) => (err ? reject(err) : resolve(rows)));
		});
		try {
			const answers = await parallel(20, (i) => pq('select ? as a; select ? * ? as b', [i, i, i]));
			return answers.map(([[a], [b]]) => [a.a, b.b]);
		} finally {
			await new Promise((resolve) => pool.end(() => resolve()));
		}
	});
	assert.deepEqual(result[7], [7, 49]);
});
