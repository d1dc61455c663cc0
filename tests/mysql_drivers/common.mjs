// What the MySQL driver tests share: where to connect, and how to compare
// the results of one scenario run through the agent and directly on the
// origin (tests/drivers/common.mjs is the PostgreSQL side's counterpart).
//
// Environment (t/110_mysql_drivers.pl sets it):
//   MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DATABASE
//                    the agent's MySQL listener; MYSQL_DATABASE is the
//                    config's name
//   ORIGIN_HOST, ORIGIN_PORT, ORIGIN_USER, ORIGIN_PASSWORD, ORIGIN_DATABASE
//                    the origin database itself, same user
//   HD_POOL_MODE     transaction | session | direct (MYSQL_* is the origin
//                    too: a control run of the tests themselves)
//   HD_ORIGIN_LIMIT  the config's origin_connection_limit
import { createHash } from 'node:crypto';
import { checkOriginConns, onTargets } from '../node_shared/harness.mjs';

export { parallel, rejection } from '../node_shared/harness.mjs';

function target(prefix) {
	const env = (k) => process.env[`${prefix}_${k}`];
	if (!env('HOST') || !env('PORT') || !env('USER') || !env('DATABASE')) {
		throw new Error(`set ${prefix}_HOST, ${prefix}_PORT, ${prefix}_USER, ${prefix}_PASSWORD and ${prefix}_DATABASE`);
	}
	return {
		host: env('HOST'),
		port: Number(env('PORT')),
		user: env('USER'),
		password: env('PASSWORD') ?? '',
		database: env('DATABASE'),
	};
}

export const AGENT = target('MYSQL');
export const ORIGIN = target('ORIGIN');
export const POOL_MODE = process.env.HD_POOL_MODE || 'transaction';
export const ORIGIN_LIMIT = Number(process.env.HD_ORIGIN_LIMIT || 2);

// Each scenario runs against both; tables get the target's name as a suffix
// so that the two runs never see each other's rows.
export const targets = [
	{ name: 'agent', conn: AGENT },
	{ name: 'origin', conn: ORIGIN },
];

// Only transaction pooling moves a client between origin connections.
export const expectRotation = POOL_MODE === 'transaction';

// The size of a driver's pool: under session pooling a client holds its
// origin connection until it disconnects, and a pool's connections stay
// open, so a pool larger than the origin limit would wait for good (an
// application sizes it so too).
export function poolSize(n) {
	return POOL_MODE === 'session' ? Math.min(n, ORIGIN_LIMIT) : n;
}

// After the agent run of a scenario whose clients each recorded the origin
// threads (CONNECTION_ID(), which the origin answers) they were served by:
// no more threads than origin_connection_limit, and under transaction
// pooling at least one client moved between them (so what it prepared had
// to follow it).
export function checkBackends(targetName, idsPerClient) {
	checkOriginConns({ poolMode: POOL_MODE, limit: ORIGIN_LIMIT, expectRotation, noun: 'threads' },
		targetName, idsPerClient);
}

// A value's type, the way the comparisons see it.
export function typeOf(v) {
	if (v === null) return 'null';
	if (v instanceof Date) return 'Date';
	if (Buffer.isBuffer(v)) return 'Buffer';
	if (Array.isArray(v)) return 'Array';
	return typeof v;
}

// Rows with the type of every column recorded next to its value, for
// deepEqual across targets (a Buffer and a string of the same bytes must
// not compare equal).
export function normalize(rows) {
	return rows.map((r) => {
		const out = {};
		for (const [k, v] of Object.entries(r)) {
			out[k] = Buffer.isBuffer(v) ? `Buffer(${v.toString('hex')})` : v;
			out[`${k}:type`] = typeOf(v);
		}
		return out;
	});
}

// The columns a driver reports, without what differs between two runs of
// the same statement (the table's name has the target in it).
export function fieldsOf(fields) {
	return (fields || []).map((f) => ({
		name: f.name,
		type: f.columnType ?? f.type,
		length: f.columnLength ?? f.length,
		decimals: f.decimals,
		flags: f.flags,
		charset: f.characterSet ?? f.charsetNr,
	}));
}

export function sha1(buf) {
	return createHash('sha1').update(buf).digest('hex');
}

// Runs scenario(conn, target) on every target; checks that all results are
// equal and returns the agent's.
export function onBoth(scenario) {
	return onTargets(targets, (t) => t.conn, scenario);
}

// What of a server error a client sees, the same from the agent and the
// origin.
export function errorOf(e) {
	return { code: e.code, errno: e.errno, sqlState: e.sqlState, message: e.sqlMessage ?? e.message };
}
