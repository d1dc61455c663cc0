// What both driver suites' common.mjs share (tests/drivers for PostgreSQL,
// tests/mysql_drivers for MySQL): running a scenario on every target and
// comparing, the spread of clients over origin connections, workers at
// once, and errors a call must raise. No driver imports here: each suite's
// common.mjs says where to connect.
//
// t/HdTest.pm's hd_node_packages() copies this directory beside each suite's
// copy, so the relative import '../node_shared/harness.mjs' holds in the
// source tree and in the tests' copies alike.
import assert from 'node:assert/strict';

// Runs scenario(pick(t), t.name) on every target t; checks that all results
// are equal and returns the agent's (targets: [{ name: 'agent' | 'origin', ... }]).
export async function onTargets(targets, pick, scenario) {
	const results = {};
	for (const t of targets) {
		results[t.name] = await scenario(pick(t), t.name);
	}
	assert.deepStrictEqual(results.agent, results.origin,
		'the same operations give the same results through the agent and on the origin');
	return results.agent;
}

// After the agent run of a scenario whose clients each recorded the origin
// connections they were served by (ids: a backend's pid, a thread's id): no
// more than the config's origin_connection_limit, and under transaction
// pooling (expectRotation) at least one client moved between them.
// noun: what an id is, in the messages ('backends', 'threads').
export function checkOriginConns({ poolMode, limit, expectRotation, noun }, target, idsPerClient) {
	if (target !== 'agent' || poolMode === 'direct') return;
	const all = new Set(idsPerClient.flat());
	assert.ok(all.size <= limit,
		`at most origin_connection_limit (${limit}) origin ${noun}, saw ${all.size}`);
	if (expectRotation) {
		assert.ok(idsPerClient.some((p) => new Set(p).size > 1),
			`a client moved between origin connections (${noun} per client: ${idsPerClient.map((p) => new Set(p).size)})`);
	}
}

// Runs fn on n workers at once; rejects with the first failure.
export async function parallel(n, fn) {
	const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => fn(i)));
	const failed = settled.filter((s) => s.status === 'rejected');
	if (failed.length) {
		const first = failed[0].reason;
		first.message = `${failed.length} of ${n} workers failed; first: ${first.message}`;
		throw first;
	}
	return settled.map((s) => s.value);
}

// Awaits a promise that must reject; returns the error (or fails).
export async function rejection(promise, what) {
	try {
		await promise;
	} catch (e) {
		return e;
	}
	assert.fail(`${what}: expected an error, got success`);
}
