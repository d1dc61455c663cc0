// What the driver tests share: where to connect, and how to compare the
// results of one scenario run through the agent and directly on the origin.
//
// Environment (t/030_drivers.pl sets it):
//   HYPERDRIVE_URL   the agent: postgresql://app:PASSWORD@127.0.0.1:PORT/CONFIG
//   ORIGIN_URL       the origin database itself, same role
//   HD_POOL_MODE     transaction | session | direct (HYPERDRIVE_URL is the
//                    origin too: a control run of the tests themselves)
//   HD_ORIGIN_LIMIT  the config's origin_connection_limit (informational)
//   HD_EXPECT_ROTATION  0: do not require a client to move between origin
//                    connections under transaction pooling
import { checkOriginConns, onTargets } from '../node_shared/harness.mjs';

export { parallel, rejection } from '../node_shared/harness.mjs';

export const HYPERDRIVE_URL = process.env.HYPERDRIVE_URL;
export const ORIGIN_URL = process.env.ORIGIN_URL;
export const POOL_MODE = process.env.HD_POOL_MODE || 'transaction';
export const ORIGIN_LIMIT = Number(process.env.HD_ORIGIN_LIMIT || 2);

if (!HYPERDRIVE_URL || !ORIGIN_URL) {
	throw new Error('set HYPERDRIVE_URL (the agent) and ORIGIN_URL (the origin) to connection strings');
}

// Each scenario runs against both; tables get the target's name as a suffix
// so that the two runs never see each other's rows.
export const targets = [
	{ name: 'agent', url: HYPERDRIVE_URL },
	{ name: 'origin', url: ORIGIN_URL },
];

// Only transaction pooling moves a client between origin connections.
// HD_EXPECT_ROTATION=0 turns the check off (t/030's caching run: reads served
// from the cache leave the origin connections idle, so a client may well get
// the same one each time; the plain transaction-pooling run checks it).
export const expectRotation = POOL_MODE === 'transaction' && process.env.HD_EXPECT_ROTATION !== '0';

// After the agent run of a scenario whose clients each recorded the origin
// backends (pg_backend_pid()) they were served by: no more backends than
// origin_connection_limit, and under transaction pooling at least one
// client moved between them (so its named statements had to follow it).
export function checkBackends(target, pidsPerClient) {
	checkOriginConns({ poolMode: POOL_MODE, limit: ORIGIN_LIMIT, expectRotation, noun: 'backends' },
		target, pidsPerClient);
}

// A value's type, the way the comparisons see it.
export function typeOf(v) {
	if (v === null) return 'null';
	if (v instanceof Date) return 'Date';
	if (Array.isArray(v)) return 'Array';
	return typeof v;
}

// Rows with Date values replaced by their type (timestamps differ between
// runs) and the type of every column recorded, for deepEqual across targets.
export function normalize(rows) {
	return rows.map((r) => {
		const out = {};
		for (const [k, v] of Object.entries(r)) {
			out[k] = v instanceof Date ? `Date(${Number.isNaN(v.getTime()) ? 'invalid' : 'valid'})` : v;
			out[`${k}:type`] = typeOf(v);
		}
		return out;
	});
}

// Runs scenario(url, target) on every target; checks that all results are
// equal and returns the agent's.
export function onBoth(scenario) {
	return onTargets(targets, (t) => t.url, scenario);
}

export function hostPort(url) {
	const u = new URL(url);
	return { host: u.hostname, port: Number(u.port || 5432) };
}
