// Drizzle ORM over mysql2: typed queries built from a schema object (sent
// with query(), the text protocol), a pool and transactions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { drizzle } from 'drizzle-orm/mysql2';
import { and, asc, count, eq, gt, sql } from 'drizzle-orm';
import {
	boolean, datetime, decimal, int, json, mysqlTable, varchar,
} from 'drizzle-orm/mysql-core';
import { normalize, onBoth, poolSize, rejection } from './common.mjs';

function itemsTable(name) {
	return mysqlTable(name, {
		id: int('id').primaryKey(),
		name: varchar('name', { length: 50 }).notNull().unique(),
		price: decimal('price', { precision: 10, scale: 2 }),
		qty: int('qty'),
		ok: boolean('ok'),
		created: datetime('created', { mode: 'string', fsp: 6 }),
		meta: json('meta'),
	});
}

async function withDb(conn, fn) {
	const pool = mysql.createPool({ ...conn, connectionLimit: poolSize(3) });
	try {
		return await fn(drizzle({ client: pool }), pool);
	} finally {
		await pool.end();
	}
}

async function createItems(pool, name) {
	await pool.query(`drop table if exists ${name}`);
	await pool.query(`
		create table ${name} (
			id int primary key,
			name varchar(50) not null unique,
			price decimal(10, 2),
			qty int,
			ok boolean,
			created datetime(6),
			meta json
		) engine=InnoDB`);
}

test('typed insert / select / update / delete', async () => {
	const result = await onBoth((conn, target) => withDb(conn, async (db, pool) => {
		const name = `dz_crud_${target}`;
		const items = itemsTable(name);
		await createItems(pool, name);
		const inserted = await db.insert(items).values([
			{ id: 1, name: 'apple', price: '1.50', qty: 10, ok: true, created: '2024-01-02 03:04:05.678901', meta: { k: 1 } },
			{ id: 2, name: 'bread', price: '2.25', qty: 3, ok: false },
			{ id: 3, name: 'cheese 🧀' },
		]);
		const one = await db.select().from(items).where(eq(items.id, 1));
		const some = await db.select({ id: items.id, name: items.name })
			.from(items).where(and(gt(items.qty, 1), eq(items.ok, true))).orderBy(asc(items.id));
		const updated = await db.update(items)
			.set({ price: sql`${items.price} * 2`, qty: sql`${items.qty} + 1` })
			.where(eq(items.name, 'bread'));
		const deleted = await db.delete(items).where(eq(items.id, 2));
		const all = await db.select().from(items).orderBy(asc(items.id));
		const [{ n }] = await db.select({ n: count() }).from(items);
		const getItem = db.select().from(items).where(eq(items.id, sql.placeholder('id'))).prepare();
		const prepared = [];
		for (const id of [1, 3, 1]) prepared.push((await getItem.execute({ id }))[0].name);
		const dup = await rejection(db.insert(items).values({ id: 9, name: 'apple' }), 'a duplicate name');
		return {
			inserted: inserted[0].affectedRows, one, some, updated: updated[0].affectedRows,
			deleted: deleted[0].affectedRows, all: normalize(all), n, prepared,
			dup: [dup.cause?.errno ?? dup.errno, dup.cause?.sqlState ?? dup.sqlState],
		};
	}));
	assert.equal(result.inserted, 3);
	assert.equal(result.one[0].price, '1.50');
	assert.equal(result.one[0].created, '2024-01-02 03:04:05.678901');
	assert.deepEqual(result.one[0].meta, { k: 1 });
	assert.deepEqual(result.some, [{ id: 1, name: 'apple' }]);
	assert.equal(result.updated, 1);
	assert.equal(result.n, 2);
	assert.deepEqual(result.prepared, ['apple', 'cheese 🧀', 'apple']);
	assert.deepEqual(result.dup, [1062, '23000']);
});

test('transactions: commit, rollback, a nested savepoint', async () => {
	const result = await onBoth((conn, target) => withDb(conn, async (db, pool) => {
		const name = `dz_tx_${target}`;
		const items = itemsTable(name);
		await createItems(pool, name);
		await db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 1, name: 'kept' });
			await rejection(tx.transaction(async (inner) => {
				await inner.insert(items).values({ id: 2, name: 'to savepoint' });
				inner.rollback();
			}), 'the nested rollback');
			await tx.insert(items).values({ id: 3, name: 'also kept' });
		});
		const rolledBack = await rejection(db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 4, name: 'gone' });
			tx.rollback();
		}), 'a rolled back transaction');
		const failed = await rejection(db.transaction(async (tx) => {
			await tx.insert(items).values({ id: 5, name: 'gone too' });
			await tx.insert(items).values({ id: 6, name: 'kept' });
		}), 'a duplicate inside a transaction');
		const rows = await db.select({ id: items.id, name: items.name }).from(items).orderBy(asc(items.id));
		return {
			rolledBack: rolledBack.constructor.name,
			failed: failed.cause?.errno ?? failed.errno,
			rows,
		};
	}));
	assert.equal(result.rolledBack, 'TransactionRollbackError');
	assert.equal(result.failed, 1062);
	assert.deepEqual(result.rows, [{ id: 1, name: 'kept' }, { id: 3, name: 'also kept' }]);
});
