// What both driver suites' common.mjs share (tests/drivers for PostgreSQL,
// tests/mysql_drivers for MySQL): running a scenario on every target and
// comparing, workers at once, and errors a call must raise. No driver
// imports here: each suite's common.mjs says where to connect.
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
