// node-postgres (the `pg` package), pure JavaScript client. Queries with a
// `name` are named prepared statements: pg sends Parse once per connection
// and afterwards only Bind/Execute with that name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
	ORIGIN_LIMIT, POOL_MODE, checkBackends, hostPort, normalize, onBoth, parallel, rejection,
} from './common.mjs';

async function withClient(url, fn) {
	const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15000 });
	client.on('error', () => {});		// reported through the queries
	await client.connect();
	try {
		return await fn(client);
	} finally {
		await client.end();
	}
}

async function createItems(client, table) {
	await client.query(`drop table if exists ${table}`);
	await client.query(`
		create table ${table} (
			id int primary key,
			name text not null unique,
			price numeric(10, 2),
			qty bigint,
			ok boolean,
			created timestamptz not null default now(),
			day date,
			tags text[],
			meta jsonb
		)`);
}

test('CRUD', async () => {
	const result = await onBoth((url, target) => withClient(url, async (c) => {
		const t = `pg_crud_${target}`;
		await createItems(c, t);
		const insert = `insert into ${t} (id, name, price, qty, ok, tags, meta) values ($1, $2, $3, $4, $5, $6, $7) returning id`;
		const ins = [];
		for (const row of [
			[1, 'apple', '1.50', 10, true, ['red', 'fruit'], { k: 1 }],
			[2, 'bread', '2.25', 3, false, [], { k: [2] }],
			[3, 'cheese', null, null, null, null, null],
		]) {
			ins.push((await c.query({ name: `ins-${t}`, text: insert, values: row })).rows[0].id);
		}
		const byId = await c.query({ name: 'get-item', text: `select * from ${t} where id = $1`, values: [1] });
		const updated = await c.query(`update ${t} set price = price * $1, qty = qty + 1 where id <= $2 returning id, price, qty`, [2, 2]);
		const deleted = await c.query(`delete from ${t} where name = $1`, ['bread']);
		const all = await c.query(`select id, name, price, qty, ok, created, day, tags, meta from ${t} order by id`);
		const agg = await c.query(`select count(*) as n, sum(price) as total, now() as at from ${t}`);
		const typed = await c.query({
			name: 'typed',
			text: 'select $1::int4 as i, $2::int8 as big, $3::numeric as num, $4::timestamptz as ts, $5::bool as b, $6::text as s',
			values: [42, '9007199254740993', '3.14', new Date('2024-02-29T12:00:00Z'), true, 'x'],
		});
		// a simple-protocol query (no parameters) with several statements
		const multi = await c.query(`select 1 as a; select 'two' as b`);
		assert.deepEqual(ins, [1, 2, 3]);
		assert.equal(updated.rowCount, 2);
		assert.equal(deleted.rowCount, 1);
		assert.equal(all.rowCount, 2);
		assert.equal(typeof byId.rows[0].price, 'string', 'numeric comes back as a string');
		assert.equal(byId.rows[0].price, '1.50');
		assert.ok(byId.rows[0].created instanceof Date, 'timestamptz comes back as a Date');
		assert.deepEqual(byId.rows[0].tags, ['red', 'fruit']);
		assert.deepEqual(byId.rows[0].meta, { k: 1 });
		assert.equal(typed.rows[0].big, '9007199254740993', 'int8 comes back as a string');
		assert.equal(typed.rows[0].ts.toISOString(), '2024-02-29T12:00:00.000Z');
		assert.deepEqual(multi.map((r) => r.rows), [[{ a: 1 }], [{ b: 'two' }]]);
		return {
			ins,
			byId: normalize(byId.rows),
			updated: normalize(updated.rows),
			deleted: deleted.rowCount,
			all: normalize(all.rows),
			agg: normalize(agg.rows),
			typed: normalize(typed.rows),
			fields: all.fields.map((f) => [f.name, f.dataTypeID]),
			commands: [updated.command, deleted.command, all.command],
		};
	}));
	assert.deepEqual(result.updated.map((r) => r.price), ['3.00', '4.50']);
});

test('repeated reads between writes: each read sees every write before it', async () => {
	// through a caching config most of these reads are hits (unnamed with
	// parameters, named, and simple protocol); t/030 checks that there were hits
	const result = await onBoth((url, target) => withClient(url, async (c) => {
		const t = `pg_reads_${target}`;
		await c.query(`drop table if exists ${t}`);
		await c.query(`create table ${t} (id int primary key, name text, qty int)`);
		await c.query(`insert into ${t} select g, 'n' || g, g from generate_series(1, 20) g`);
		// a caching agent serves this client from the cache only once its change
		// stream has applied the client's own writes (read-your-writes): give it
		// a moment, so that the reads below can be hits on a loaded machine too
		await new Promise((resolve) => setTimeout(resolve, 500));
		const seen = [];
		for (let round = 1; round <= 3; round++) {
			for (let i = 0; i < 4; i++) {
				seen.push((await c.query(`select name, qty from ${t} where id = $1`, [round])).rows);
				seen.push((await c.query({
					name: `sum-${t}`, text: `select sum(qty)::int as total from ${t} where id <= $1`, values: [10],
				})).rows);
				seen.push((await c.query(`select count(*)::int as n, max(qty) as top from ${t}`)).rows);
			}
			await c.query(`update ${t} set qty = qty + 100 where id = $1`, [round]);
			seen.push((await c.query(`select name, qty from ${t} where id = $1`, [round])).rows);
		}
		return seen;
	}));
	assert.equal(result.length, 3 * 13);
	assert.deepEqual(result.at(-1), [{ name: 'n3', qty: 103 }], 'the last read sees the last write');
});

test('transaction rolled back: its rows are not there after', async () => {
	await onBoth((url, target) => withClient(url, async (c) => {
		const t = `pg_rb_${target}`;
		await createItems(c, t);
		await c.query('BEGIN');
		await c.query({ name: 'rb-ins', text: `insert into ${t} (id, name) values ($1, $2)`, values: [10, 'r10'] });
		await c.query({ name: 'rb-ins', text: `insert into ${t} (id, name) values ($1, $2)`, values: [11, 'r11'] });
		const inside = (await c.query(`select count(*)::int as n from ${t}`)).rows[0].n;
		await c.query('ROLLBACK');
		const after = (await c.query(`select count(*)::int as n from ${t}`)).rows[0].n;
		assert.equal(inside, 2);
		assert.equal(after, 0);
		// the named statement still works after the rollback
		await c.query({ name: 'rb-ins', text: `insert into ${t} (id, name) values ($1, $2)`, values: [12, 'r12'] });
		const rows = (await c.query(`select id from ${t} order by id`)).rows.map((r) => r.id);
		assert.deepEqual(rows, [12]);
		return { inside, after, rows };
	}));
});

test('error in a transaction: 23505, then 25P02 until ROLLBACK, which recovers', async () => {
	await onBoth((url, target) => withClient(url, async (c) => {
		const t = `pg_err_${target}`;
		await createItems(c, t);
		const ins = (id, name) => c.query({ name: 'err-ins', text: `insert into ${t} (id, name) values ($1, $2)`, values: [id, name] });
		const get = (id) => c.query({ name: 'get-item', text: `select id, name from ${t} where id = $1`, values: [id] });
		await ins(1, 'taken');
		const codes = [];
		await c.query('BEGIN');
		await ins(2, 'fresh');
		codes.push((await rejection(ins(3, 'taken'), 'duplicate')).code);
		codes.push((await rejection(get(1), 'named after error')).code);
		codes.push((await rejection(c.query('select 1'), 'simple after error')).code);
		codes.push((await rejection(c.query({ name: 'new-in-failed', text: 'select $1::int as v', values: [1] }), 'new named after error')).code);
		await c.query('ROLLBACK');
		codes.push((await get(1)).rows[0].name);
		codes.push((await c.query({ name: 'new-in-failed', text: 'select $1::int as v', values: [5] })).rows[0].v);
		const rows = (await c.query(`select id from ${t} order by id`)).rows.map((r) => r.id);
		assert.deepEqual(codes, ['23505', '25P02', '25P02', '25P02', 'taken', 5]);
		assert.deepEqual(rows, [1]);
		return { codes, rows };
	}));
});

test('named statement reused in many transactions across origin connections', async () => {
	const rounds = 60;
	await onBoth(async (url, target) => {
		const t = `pg_stmt_${target}`;
		await withClient(url, async (c) => {
			await createItems(c, t);
			await c.query(`insert into ${t} (id, name, price) select g, 'item' || g, g * 1.25 from generate_series(1, 20) g`);
		});
		const perClient = await parallel(3, (k) => withClient(url, async (c) => {
			const pids = new Set();
			const seen = [];
			for (let i = 0; i < rounds; i++) {
				const id = 1 + ((i + k * 7) % 20);
				await c.query('BEGIN');
				const r = await c.query({
					name: 'get-item',
					text: `select id, name, price, pg_backend_pid() as pid from ${t} where id = $1`,
					values: [id],
				});
				const n = await c.query({
					name: 'count-others',
					text: `select count(*)::int as n from ${t} where price > $1 and id <> $2`,
					values: ['0', id],
				});
				await c.query('COMMIT');
				const row = r.rows[0];
				pids.add(row.pid);
				assert.equal(row.id, id);
				assert.equal(row.name, `item${id}`);
				assert.equal(row.price, (id * 1.25).toFixed(2));
				assert.equal(n.rows[0].n, 19);
				// outside a transaction too
				const plain = await c.query({ name: 'get-item', text: `select id, name, price, pg_backend_pid() as pid from ${t} where id = $1`, values: [id] });
				assert.equal(plain.rows[0].name, `item${id}`);
				pids.add(plain.rows[0].pid);
				seen.push(row.price);
			}
			return { pids: [...pids], seen };
		}));
		checkBackends(target, perClient.map((p) => p.pids));
		return perClient.map((p) => p.seen);
	});
});

test('more concurrent clients than origin connections', async () => {
	await onBoth(async (url, target) => {
		const t = `pg_conc_${target}`;
		await withClient(url, (c) => createItems(c, t));
		const results = await parallel(10, (k) => withClient(url, async (c) => {
			let sum = 0;
			for (let i = 0; i < 20; i++) {
				const r = await c.query({
					name: 'conc',
					text: 'select $1::int + 0 * length(pg_sleep(0.002)::text) as v',
					values: [k * 100 + i],
				});
				sum += r.rows[0].v;
				if (i % 5 === 0) {
					await c.query(`insert into ${t} (id, name) values ($1, $2)`, [k * 100 + i, `c${k}i${i}`]);
				}
			}
			return sum;
		}));
		const n = await withClient(url, async (c) => (await c.query(`select count(*)::int as n from ${t}`)).rows[0].n);
		assert.equal(n, 40);
		assert.deepEqual(results, Array.from({ length: 10 }, (_, k) => 20 * k * 100 + 190));
		// a pg.Pool as an application would have it (under session pooling an
		// idle pooled client keeps its origin connection: no more than the limit)
		const pool = new pg.Pool({ connectionString: url, max: POOL_MODE === 'session' ? ORIGIN_LIMIT : 10 });
		try {
			const pooled = await Promise.all(Array.from({ length: 40 }, (_, i) =>
				pool.query({ name: 'pooled', text: 'select $1::int * 2 as v', values: [i] })));
			assert.deepEqual(pooled.map((r) => r.rows[0].v), Array.from({ length: 40 }, (_, i) => i * 2));
		} finally {
			await pool.end();
		}
		return { results, n };
	});
});

// The protocol's CancelRequest on a new connection to the same address, with
// the BackendKeyData the client got: what pg's Client#cancel does.
function sendCancel(url, client) {
	const { host, port } = hostPort(url);
	return new Promise((resolve, reject) => {
		const con = new pg.Connection();
		con.on('connect', () => con.cancel(client.processID, client.secretKey));
		con.on('end', resolve);
		con.on('error', reject);
		con.connect(port, host);
	});
}

test('cancel: a running query is canceled with 57014', async () => {
	await onBoth((url) => withClient(url, async (c) => {
		assert.ok(Number.isInteger(c.processID) && Number.isInteger(c.secretKey), 'got BackendKeyData');
		const started = Date.now();
		const q = c.query('select pg_sleep(10)');
		setTimeout(() => sendCancel(url, c).catch(() => {}), 300);
		const err = await rejection(q, 'pg_sleep(10)');
		const elapsed = Date.now() - started;
		assert.equal(err.code, '57014', `canceled (got ${err.code}: ${err.message})`);
		assert.ok(elapsed < 5000, `canceled quickly (${elapsed} ms)`);
		const v = (await c.query({ name: 'after-cancel', text: 'select $1::int as v', values: [7] })).rows[0].v;
		assert.equal(v, 7);
		// a named statement canceled inside a transaction
		await c.query('BEGIN');
		const q2 = c.query({ name: 'sleep', text: 'select pg_sleep($1)', values: [10] });
		setTimeout(() => sendCancel(url, c).catch(() => {}), 300);
		const inTx = await rejection(q2, 'pg_sleep(10) in a transaction');
		assert.equal(inTx.code, '57014');
		const aborted = await rejection(c.query('select 1'), 'after cancel in a transaction');
		assert.equal(aborted.code, '25P02');
		await c.query('ROLLBACK');
		const w = (await c.query({ name: 'after-cancel', text: 'select $1::int as v', values: [8] })).rows[0].v;
		assert.equal(w, 8);
		return { code: err.code, inTx: inTx.code, aborted: aborted.code, v, w };
	}));
});

test('errors outside a transaction leave the connection usable', async () => {
	await onBoth((url) => withClient(url, async (c) => {
		const codes = [];
		for (let round = 0; round < 2; round++) {
			// a named statement that does not parse, one whose Bind fails, one whose Execute fails
			codes.push((await rejection(c.query({ name: 'bad-syntax', text: 'selec $1::int', values: [1] }), 'syntax')).code);
			codes.push((await rejection(c.query({ name: 'bad-int', text: 'select $1::int as v', values: ['abc'] }), 'bad parameter')).code);
			codes.push((await rejection(c.query({ name: 'div', text: 'select 1 / $1::int as v', values: [0] }), 'division by zero')).code);
			codes.push((await c.query({ name: 'bad-int', text: 'select $1::int as v', values: [round + 1] })).rows[0].v);
			codes.push((await c.query({ name: 'div', text: 'select 1 / $1::int as v', values: [1] })).rows[0].v);
		}
		codes.push((await rejection(c.query('select 1/0'), 'simple')).code);
		codes.push((await c.query('select 3 as v')).rows[0].v);
		assert.deepEqual(codes, ['42601', '22P02', '22012', 1, 1, '42601', '22P02', '22012', 2, 1, '22012', 3]);
		return codes;
	}));
});

test('pipeline mode: named queries written back to back', async () => {
	await onBoth((url) => (async () => {
		const c = new pg.Client({ connectionString: url, pipeline: true, connectionTimeoutMillis: 15000 });
		c.on('error', () => {});
		await c.connect();
		try {
			const n = 100;
			const results = await Promise.all(Array.from({ length: n }, (_, i) =>
				(i % 10 === 7
					? c.query({ name: 'pl-div', text: 'select $1::int / 0 as v', values: [i] }).catch((e) => e.code)
					: c.query({ name: `pl-${i % 3}`, text: `select $1::int + ${i % 3} - ${i % 3} as v`, values: [i] }))));
			const values = results.map((r) => (typeof r === 'string' ? r : r.rows[0].v));
			assert.deepEqual(values, Array.from({ length: n }, (_, i) => (i % 10 === 7 ? '22012' : i)));
			return values;
		} finally {
			await c.end();
		}
	})());
});

test('large result', async () => {
	await onBoth((url) => withClient(url, async (c) => {
		const r = await c.query({ name: 'big', text: "select g as id, repeat('x', 200) as pad from generate_series(1, $1::int) g", values: [50000] });
		assert.equal(r.rowCount, 50000);
		assert.equal(r.rows[49999].id, 50000);
		const again = await c.query({ name: 'big', text: "select g as id, repeat('x', 200) as pad from generate_series(1, $1::int) g", values: [10] });
		assert.equal(again.rowCount, 10);
		return [r.rowCount, again.rowCount];
	}));
});
