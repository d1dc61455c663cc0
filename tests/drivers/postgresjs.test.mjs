// Postgres.js (the `postgres` package) with its default options: prepare is
// true, so every query with parameters is a named prepared statement that the
// driver parses once per connection and then only binds and executes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import {
	checkBackends, normalize, onBoth, parallel, rejection,
} from './common.mjs';

const options = { onnotice: () => {}, connect_timeout: 15 };

async function withSql(url, extra, fn) {
	const sql = postgres(url, { ...options, ...extra });
	try {
		return await fn(sql);
	} finally {
		await sql.end({ timeout: 5 });
	}
}

async function createItems(sql, table) {
	await sql`drop table if exists ${sql(table)}`;
	await sql`
		create table ${sql(table)} (
			id int primary key,
			name text not null unique,
			price numeric(10, 2),
			qty bigint,
			ok boolean,
			created timestamptz not null default now(),
			day date,
			tags text[],
			meta jsonb
		)`;
}

test('CRUD', async () => {
	const result = await onBoth((url, target) => withSql(url, {}, async (sql) => {
		const t = `pjs_crud_${target}`;
		await createItems(sql, t);
		const rows = [
			{ id: 1, name: 'apple', price: '1.50', qty: 10, ok: true, tags: ['red', 'fruit'], meta: sql.json({ k: 1 }) },
			{ id: 2, name: 'bread', price: '2.25', qty: 3, ok: false, tags: [], meta: sql.json({ k: [2] }) },
			{ id: 3, name: 'cheese', price: null, qty: null, ok: null, tags: null, meta: null },
		];
		const inserted = await sql`insert into ${sql(t)} ${sql(rows, 'id', 'name', 'price', 'qty', 'ok', 'tags', 'meta')} returning id`;
		const byId = await sql`select * from ${sql(t)} where id = ${1}`;
		const updated = await sql`update ${sql(t)} set price = price * ${2}, qty = qty + 1 where id <= ${2} returning id, price, qty`;
		const deleted = await sql`delete from ${sql(t)} where name = ${'bread'}`;
		const all = await sql`select id, name, price, qty, ok, created, day, tags, meta from ${sql(t)} order by id`;
		const agg = await sql`select count(*) as n, sum(price) as total, now() as at from ${sql(t)}`;
		// one placeholder, many types, all in one statement
		const typed = await sql`select ${42}::int4 as i, ${'9007199254740993'}::int8 as big, ${'3.14'}::numeric as num,
			${new Date('2024-02-29T12:00:00Z')}::timestamptz as ts, ${true} as b, ${'x'}::text as s`;
		assert.equal(inserted.count, 3);
		assert.equal(inserted.command, 'INSERT');
		assert.equal(updated.count, 2);
		assert.equal(deleted.count, 1);
		assert.equal(all.length, 2);
		assert.equal(typeof byId[0].price, 'string', 'numeric comes back as a string');
		assert.equal(byId[0].price, '1.50');
		assert.ok(byId[0].created instanceof Date, 'timestamptz comes back as a Date');
		assert.deepEqual(byId[0].tags, ['red', 'fruit']);
		assert.deepEqual(byId[0].meta, { k: 1 });
		assert.equal(typed[0].big, '9007199254740993', 'int8 comes back as a string');
		assert.ok(typed[0].ts instanceof Date);
		assert.equal(typed[0].ts.toISOString(), '2024-02-29T12:00:00.000Z');
		return {
			inserted: [inserted.count, inserted.map((r) => r.id)],
			byId: normalize(byId),
			updated: normalize(updated),
			deleted: deleted.count,
			all: normalize(all),
			agg: normalize(agg),
			typed: normalize(typed),
			columns: all.columns.map((c) => [c.name, c.type]),
		};
	}));
	assert.deepEqual(result.updated.map((r) => r.price), ['3.00', '4.50']);
});

test('transaction rolled back: its rows are not there after', async () => {
	await onBoth((url, target) => withSql(url, {}, async (sql) => {
		const t = `pjs_rb_${target}`;
		await createItems(sql, t);
		let inside;
		const err = await rejection(sql.begin(async (tx) => {
			await tx`insert into ${tx(t)} (id, name) values (${10}, ${'r10'}), (${11}, ${'r11'})`;
			[{ n: inside }] = await tx`select count(*)::int as n from ${tx(t)}`;
			throw new Error('roll it back');
		}), 'begin');
		assert.equal(err.message, 'roll it back');
		assert.equal(inside, 2, 'the transaction saw its own rows');
		const [{ n }] = await sql`select count(*)::int as n from ${sql(t)}`;
		assert.equal(n, 0, 'rolled back rows are gone');
		// a committed one, then a savepoint rolled back inside a committed one
		await sql.begin(async (tx) => {
			await tx`insert into ${tx(t)} (id, name) values (${12}, ${'r12'})`;
			await rejection(tx.savepoint(async (sp) => {
				await sp`insert into ${sp(t)} (id, name) values (${13}, ${'r13'})`;
				throw new Error('savepoint only');
			}), 'savepoint');
		});
		const rows = await sql`select id from ${sql(t)} order by id`;
		assert.deepEqual(rows.map((r) => r.id), [12]);
		return { inside, n, rows: rows.map((r) => r.id) };
	}));
});

test('error in a transaction: 23505, then 25P02 until ROLLBACK, which recovers', async () => {
	await onBoth((url, target) => withSql(url, {}, async (sql) => {
		const t = `pjs_err_${target}`;
		await createItems(sql, t);
		await sql`insert into ${sql(t)} (id, name) values (${1}, ${'taken'})`;
		const codes = [];

		// explicit BEGIN ... ROLLBACK on one reserved connection
		const r = await sql.reserve();
		try {
			await r`begin`;
			await r`insert into ${r(t)} (id, name) values (${2}, ${'fresh'})`;
			const dup = await rejection(r`insert into ${r(t)} (id, name) values (${3}, ${'taken'})`, 'duplicate');
			codes.push(dup.code);
			const aborted = await rejection(r`select count(*) from ${r(t)}`, 'after error');
			codes.push(aborted.code);
			const again = await rejection(r`select ${1}::int as one`, 'after error, new statement');
			codes.push(again.code);
			await r`rollback`;
			const [{ n }] = await r`select count(*)::int as n from ${r(t)}`;
			codes.push(n);
			const [{ one }] = await r`select ${1}::int as one`;
			codes.push(one);
		} finally {
			r.release();
		}

		// the same inside sql.begin: the driver rolls back for us
		const inBegin = await rejection(sql.begin(async (tx) => {
			await tx`insert into ${tx(t)} (id, name) values (${4}, ${'four'})`;
			await tx`insert into ${tx(t)} (id, name) values (${5}, ${'taken'})`;
		}), 'begin with duplicate');
		codes.push(inBegin.code);
		const rows = await sql`select id from ${sql(t)} order by id`;
		assert.deepEqual(codes, ['23505', '25P02', '25P02', 1, 1, '23505']);
		assert.deepEqual(rows.map((x) => x.id), [1]);
		return { codes, rows: rows.map((x) => x.id) };
	}));
});

test('named statements reused in many transactions across origin connections', async () => {
	const rounds = 60;
	await onBoth(async (url, target) => {
		const t = `pjs_stmt_${target}`;
		await withSql(url, { max: 1 }, async (sql) => {
			await createItems(sql, t);
			await sql`insert into ${sql(t)} (id, name, price) select g, 'item' || g, g * 1.25 from generate_series(1, 20) g`;
		});
		// three clients, each a single connection; with origin_connection_limit
		// 2 they take turns on the origin connections, so each client's
		// statements must follow it to connections that never saw them
		const perClient = await parallel(3, (c) => withSql(url, { max: 1 }, async (sql) => {
			const pids = new Set();
			const seen = [];
			for (let i = 0; i < rounds; i++) {
				const id = 1 + ((i + c * 7) % 20);
				const got = await sql.begin(async (tx) => {
					const [row] = await tx`select id, name, price, pg_backend_pid() as pid from ${tx(t)} where id = ${id}`;
					const [{ n }] = await tx`select count(*)::int as n from ${tx(t)} where price > ${'0'}::numeric and id <> ${id}`;
					return { ...row, n };
				});
				pids.add(got.pid);
				assert.equal(got.id, id);
				assert.equal(got.name, `item${id}`);
				assert.equal(got.price, (id * 1.25).toFixed(2));
				assert.equal(got.n, 19);
				// outside a transaction too
				const [plain] = await sql`select id, name from ${sql(t)} where id = ${id}`;
				assert.equal(plain.name, `item${id}`);
				seen.push(got.price);
			}
			return { pids: [...pids], seen };
		}));
		checkBackends(target, perClient.map((p) => p.pids));
		return perClient.map((p) => p.seen);
	});
});

test('more concurrent clients than origin connections', async () => {
	await onBoth(async (url, target) => {
		const t = `pjs_conc_${target}`;
		await withSql(url, { max: 1 }, (sql) => createItems(sql, t));
		const results = await parallel(10, (c) => withSql(url, { max: 1 }, async (sql) => {
			let sum = 0;
			for (let i = 0; i < 20; i++) {
				const [{ v }] = await sql`select ${c * 100 + i}::int + 0 * length(pg_sleep(0.002)::text) as v`;
				sum += v;
				if (i % 5 === 0) {
					await sql`insert into ${sql(t)} (id, name) values (${c * 100 + i}, ${`c${c}i${i}`})`;
				}
			}
			return sum;
		}));
		const [{ n }] = await withSql(url, { max: 1 }, (sql) => sql`select count(*)::int as n from ${sql(t)}`);
		assert.equal(n, 40);
		assert.deepEqual(results, Array.from({ length: 10 }, (_, c) => 20 * c * 100 + 190));
		return { results, n };
	});
});

test('cancel: a running query is canceled with 57014', async () => {
	await onBoth((url) => withSql(url, { max: 1 }, async (sql) => {
		const started = Date.now();
		const q = sql`select pg_sleep(10)`;
		setTimeout(() => q.cancel(), 300);
		const err = await rejection(q, 'pg_sleep(10)');
		const elapsed = Date.now() - started;
		assert.equal(err.code, '57014', `canceled (got ${err.code}: ${err.message})`);
		assert.ok(elapsed < 5000, `canceled quickly (${elapsed} ms)`);
		// the connection is still usable, with a named statement
		const [{ v }] = await sql`select ${7}::int as v`;
		assert.equal(v, 7);
		// and canceling inside a transaction aborts just that transaction
		const inTx = await rejection(sql.begin(async (tx) => {
			const q2 = tx`select pg_sleep(10)`;
			setTimeout(() => q2.cancel(), 300);
			await q2;
		}), 'pg_sleep(10) in a transaction');
		assert.equal(inTx.code, '57014');
		const [{ w }] = await sql`select ${8}::int as w`;
		assert.equal(w, 8);
		return { code: err.code, inTx: inTx.code, v, w };
	}));
});

test('errors outside a transaction leave the connection usable', async () => {
	await onBoth((url) => withSql(url, { max: 1 }, async (sql) => {
		const codes = [];
		for (let round = 0; round < 2; round++) {
			// Parse fails (nothing is prepared), Bind fails (the statement is), Execute fails
			codes.push((await rejection(sql`selec ${1}::int`, 'syntax error')).code);
			codes.push((await rejection(sql`select ${'abc'}::int as v`, 'bad parameter')).code);
			codes.push((await rejection(sql`select 1 / ${0}::int as v`, 'division by zero')).code);
			const [{ v }] = await sql`select ${round + 1}::int as v`;
			codes.push(v);
		}
		assert.deepEqual(codes, ['42601', '22P02', '22012', 1, '42601', '22P02', '22012', 2]);
		// the simple protocol too
		codes.push((await rejection(sql.unsafe('select 1/0'), 'simple')).code);
		codes.push((await sql.unsafe('select 3 as v'))[0].v);
		assert.deepEqual(codes.slice(8), ['22012', 3]);
		return codes;
	}));
});

test('pipelined queries on one connection', async () => {
	await onBoth((url) => withSql(url, { max: 1 }, async (sql) => {
		// Postgres.js writes queries issued together back to back without
		// waiting (one Sync each): replies must come back in order
		const n = 100;
		const results = await Promise.all(Array.from({ length: n }, (_, i) =>
			(i % 10 === 7
				? sql`select ${i}::int / 0 as v`.catch((e) => e.code)
				: i % 2
					? sql`select ${i}::int as v, pg_backend_pid() as pid`
					: sql`select ${String(i)}::text as v, ${'x'}::text as w, pg_backend_pid() as pid`)));
		const values = results.map((r) => (typeof r === 'string' ? r : r[0].v));
		assert.deepEqual(values, Array.from({ length: n }, (_, i) => (i % 10 === 7 ? '22012' : i % 2 ? i : String(i))));
		// and inside a transaction
		const inTx = await sql.begin((tx) => Array.from({ length: 20 }, (_, i) => tx`select ${i}::int as v`));
		assert.deepEqual(inTx.map((r) => r[0].v), Array.from({ length: 20 }, (_, i) => i));
		return values;
	}));
});

test('large results and COPY', async () => {
	await onBoth((url, target) => withSql(url, { max: 1 }, async (sql) => {
		const t = `pjs_copy_${target}`;
		const rows = await sql`select g as id, repeat('x', 200) as pad from generate_series(1, ${50000}) g`;
		assert.equal(rows.length, 50000);
		assert.equal(rows[49999].id, 50000);
		await sql`drop table if exists ${sql(t)}`;
		await sql`create table ${sql(t)} (id int primary key, name text)`;
		const writable = await sql`copy ${sql(t)} (id, name) from stdin`.writable();
		await new Promise((resolve, reject) => {
			writable.on('error', reject);
			writable.on('finish', resolve);
			for (let i = 1; i <= 5000; i++) writable.write(`${i}\tname ${i}\n`);
			writable.end();
		});
		const [{ n }] = await sql`select count(*)::int as n from ${sql(t)}`;
		assert.equal(n, 5000);
		const readable = await sql`copy (select id, name from ${sql(t)} order by id) to stdout`.readable();
		// (events, not for await: Postgres.js 3.4.9 hangs the connection's
		// next query when the async iterator closes the copy stream)
		let text = '';
		await new Promise((resolve, reject) => {
			readable.on('data', (chunk) => { text += chunk; });
			readable.on('end', resolve);
			readable.on('error', reject);
		});
		const lines = text.split('\n').filter(Boolean);
		assert.equal(lines.length, 5000);
		assert.equal(lines[4999], '5000\tname 5000');
		// the connection is usable after both
		const [{ v }] = await sql`select ${1}::int as v`;
		assert.equal(v, 1);
		return { rows: rows.length, n, lines: lines.length };
	}));
});
