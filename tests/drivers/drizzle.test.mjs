// Drizzle ORM over Postgres.js: typed queries built from a schema object.
// Drizzle sends its ordinary queries unnamed (prepare: false) and the ones
// made with .prepare(name) as named statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import { TransactionRollbackError, and, asc, count, eq, gt, sql } from 'drizzle-orm';
import {
	bigint, boolean, integer, jsonb, numeric, pgTable, text, timestamp,
} from 'drizzle-orm/pg-core';
import {
	checkBackends, normalize, onBoth, parallel, rejection,
} from './common.mjs';

function itemsTable(name) {
	return pgTable(name, {
		id: integer('id').primaryKey(),
		name: text('name').notNull().unique(),
		price: numeric('price', { precision: 10, scale: 2 }),
		qty: bigint('qty', { mode: 'number' }),
		ok: boolean('ok'),
		created: timestamp('created', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
		meta: jsonb('meta'),
	});
}

async function withDb(url, extra, fn) {
	const client = postgres(url, { onnotice: () => {}, connect_timeout: 15, ...extra });
	try {
		return await fn(drizzle({ client }), client);
	} finally {
		await client.end({ timeout: 5 });
	}
}

async function createItems(client, name) {
	await client.unsafe(`drop table if exists ${name}`);
	await client.unsafe(`
		create table ${name} (
			id int primary key,
			name text not null unique,
			price numeric(10, 2),
			qty bigint,
			ok boolean,
			created timestamptz not null default now(),
			meta jsonb
		)`);
}

test('typed insert / select / update / delete', async () => {
	const result = await onBoth((url, target) => withDb(url, {}, async (db, client) => {
		const name = `dz_crud_${target}`;
		const items = itemsTable(name);
		await createItems(client, name);
		const inserted = await db.insert(items).values([
			{ id: 1, name: 'apple', price: '1.50', qty: 10, ok: true, meta: { k: 1 } },
			{ id: 2, name: 'bread', price: '2.25', qty: 3, ok: false },
			{ id: 3, name: 'cheese' },
		]).returning({ id: items.id, created: items.created });
		const one = await db.select().from(items).where(eq(items.id, 1));
		const cheap = await db.select({ id: items.id, name: items.name })
			.from(items).where(and(gt(items.qty, 1), eq(items.ok, true))).orderBy(asc(items.id));
		const updated = await db.update(items)
			.set({ price: sql`${items.price} * 2`, qty: sql`${items.qty} + 1` })
			.where(eq(items.name, 'bread')).returning();
		const deleted = await db.delete(items).where(eq(items.id, 3)).returning({ id: items.id });
		const all = await db.select().from(items).orderBy(asc(items.id));
		const [{ n }] = await db.select({ n: count() }).from(items);
		const getItem = db.select().from(items).where(eq(items.id, sql.placeholder('id'))).prepare(`get_item_${target}`);
		const prepared = [];
		for (const id of [1, 2, 1, 2]) prepared.push((await getItem.execute({ id }))[0].name);

		assert.equal(inserted.length, 3);
		assert.ok(inserted.every((r) => r.created instanceof Date), 'timestamptz as Date');
		assert.equal(one[0].price, '1.50', 'numeric as a string');
		assert.equal(one[0].qty, 10);
		assert.deepEqual(one[0].meta, { k: 1 });
		assert.deepEqual(cheap, [{ id: 1, name: 'apple' }]);
		assert.equal(updated[0].price, '4.50');
		assert.equal(updated[0].qty, 4);
		assert.deepEqual(deleted, [{ id: 3 }]);
		assert.deepEqual(all.map((r) => r.id), [1, 2]);
		assert.equal(n, 2);
		assert.deepEqual(prepared, ['apple', 'bread', 'apple', 'bread']);
		return {
			inserted: normalize(inserted), one: normalize(one), cheap, updated: normalize(updated),
			deleted, all: normalize(all), n, prepared,
		};
	}));
	assert.equal(result.n, 2);
});

test('repeated reads between writes: each read sees every write before it', async () => {
	// through a caching config most of these reads are hits; t/030 checks that there were hits
	const result = await onBoth((url, target) => withDb(url, {}, async (db, client) => {
		const name = `dz_reads_${target}`;
		const counters = pgTable(name, {
			id: integer('id').primaryKey(),
			name: text('name'),
			qty: integer('qty'),
		});
		await client.unsafe(`drop table if exists ${name}`);
		await client.unsafe(`create table ${name} (id int primary key, name text, qty int)`);
		await client.unsafe(`insert into ${name} select g, 'n' || g, g from generate_series(1, 20) g`);
		// a caching agent serves this client from the cache only once its change
		// stream has applied the client's own writes (read-your-writes): give it
		// a moment, so that the reads below can be hits on a loaded machine too
		await new Promise((resolve) => setTimeout(resolve, 500));
		const byId = db.select({ name: counters.name, qty: counters.qty }).from(counters)
			.where(eq(counters.id, sql.placeholder('id'))).prepare(`dz_reads_by_id_${target}`);
		const seen = [];
		for (let round = 1; round <= 3; round++) {
			for (let i = 0; i < 4; i++) {
				seen.push(await db.select({ qty: counters.qty }).from(counters).where(eq(counters.id, round)));
				seen.push(await byId.execute({ id: round + 1 }));
				seen.push(await db.select({ n: count() }).from(counters).where(gt(counters.qty, 5)));
			}
			await db.update(counters).set({ qty: sql`${counters.qty} + 100` }).where(eq(counters.id, round));
			seen.push(await byId.execute({ id: round }));
		}
		return seen;
	}));
	assert.equal(result.length, 3 * 13);
	assert.deepEqual(result.at(-1), [{ name: 'n3', qty: 103 }], 'the last read sees the last write');
});

test('transaction rollback', async () => {
	await onBoth((url, target) => withDb(url, {}, async (db, client) => {
		const name = `dz_rb_${target}`;
		const items = itemsTable(name);
		await createItems(client, name);
		let inside;
		const err = await rejection(db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 10, name: 'r10', price: '1.00' });
			await tx.update(items).set({ price: '2.00' }).where(eq(items.id, 10));
			[{ n: inside }] = await tx.select({ n: count() }).from(items);
			tx.rollback();
		}), 'tx.rollback()');
		assert.ok(err instanceof TransactionRollbackError, `TransactionRollbackError, got ${err}`);
		assert.equal(inside, 1);
		const [{ n }] = await db.select({ n: count() }).from(items);
		assert.equal(n, 0, 'the rolled back row is gone');

		// a unique violation aborts the transaction; the driver rolls back
		await db.insert(items).values({ id: 1, name: 'taken' });
		const dup = await rejection(db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 2, name: 'two' });
			await tx.insert(items).values({ id: 3, name: 'taken' });
		}), 'duplicate in a transaction');
		const code = dup.code ?? dup.cause?.code;
		assert.equal(code, '23505');
		// a nested transaction (savepoint) rolled back, the outer one committed
		await db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 4, name: 'four' });
			await rejection(tx.transaction(async (inner) => {
				await inner.insert(items).values({ id: 5, name: 'five' });
				inner.rollback();
			}), 'nested rollback');
		});
		const ids = (await db.select({ id: items.id }).from(items).orderBy(asc(items.id))).map((r) => r.id);
		assert.deepEqual(ids, [1, 4]);
		return { inside, n, code, ids };
	}));
});

test('prepared statement reused in many transactions across origin connections', async () => {
	const rounds = 60;
	await onBoth(async (url, target) => {
		const name = `dz_stmt_${target}`;
		const items = itemsTable(name);
		await withDb(url, { max: 1 }, async (db, client) => {
			await createItems(client, name);
			await db.insert(items).values(Array.from({ length: 20 }, (_, i) => ({
				id: i + 1, name: `item${i + 1}`, price: ((i + 1) * 1.25).toFixed(2),
			})));
		});
		const perClient = await parallel(3, (k) => withDb(url, { max: 1 }, async (db) => {
			// (built on tx: with one connection, db would wait for the one tx holds)
			const getItem = (q) => q.select({ id: items.id, name: items.name, price: items.price, pid: sql`pg_backend_pid()`.mapWith(Number) })
				.from(items).where(eq(items.id, sql.placeholder('id'))).prepare('dz_get_item');
			const pids = new Set();
			const seen = [];
			for (let i = 0; i < rounds; i++) {
				const id = 1 + ((i + k * 7) % 20);
				const row = await db.transaction(async (tx) => {
					const [r] = await getItem(tx).execute({ id });
					await tx.update(items).set({ qty: sql`coalesce(${items.qty}, 0) + 1` }).where(eq(items.id, id));
					return r;
				});
				pids.add(row.pid);
				// and outside a transaction
				const [plain] = await getItem(db).execute({ id });
				pids.add(plain.pid);
				assert.equal(plain.name, `item${id}`);
				assert.equal(row.name, `item${id}`);
				assert.equal(row.price, (id * 1.25).toFixed(2));
				seen.push(row.price);
			}
			return { pids: [...pids], seen };
		}));
		const total = await withDb(url, { max: 1 }, async (db) =>
			(await db.select({ s: sql`sum(${items.qty})`.mapWith(Number) }).from(items))[0].s);
		assert.equal(total, 3 * rounds);
		checkBackends(target, perClient.map((p) => p.pids));
		return { seen: perClient.map((p) => p.seen), total };
	});
});
