#!/bin/bash
# The upstream driver test suites through the agent (issue 10): Postgres.js
# (porsager/postgres, tests/index.js) and node-postgres (brianc/node-postgres,
# packages/pg/test/integration), each run directly on a throwaway origin and
# through the agent, as the same non-superuser role, and compared.
#
# usage: tests/drivers/upstream.sh [options] POSTGRESJS_CHECKOUT NODE_POSTGRES_CHECKOUT
#
#   --suites LIST    postgresjs,pg (default both)
#   --targets LIST   direct,session,transaction,cache (default all four):
#                    direct: the origin itself (the control run); session /
#                    transaction: the agent in that pool mode, caching off;
#                    cache: the agent in transaction pooling with the result cache
#   --only REGEX     run only the Postgres.js tests / node-postgres test files
#                    whose name matches (for re-running a few)
#   --out DIR        results and logs (default /var/tmp/hyperdrive-upstream/results)
#   --keep           keep the origin's data directory and the agents' state
#   --log-statements log every statement in the origin's log (for diagnosis)
#   --hold           after the runs, keep the origin and the last target's agent
#                    running and print the environment to run tests by hand
#                    (until interrupted; with --suites '' it only sets up)
#   environment: AGENT_AUTH_TYPE (default scram-sha-256), AGENT_LOG_LEVEL (info),
#   ORIGIN_LIMIT (origin_connection_limit of each config, default 20),
#   PGJS_TIMEOUT (seconds for the whole Postgres.js run, default 600),
#   PG_FILE_TIMEOUT (seconds per node-postgres test file, default 60).
#
# Run as root (it runs PostgreSQL and the agent as the postgres user). Not part
# of scripts/test: it needs the two checkouts and takes about 8 minutes for
# everything. The suites' code is never copied into this repository: make the
# checkouts anywhere outside it, at a released tag. With clones of the GitHub
# repositories porsager/postgres and brianc/node-postgres:
#
#   git -C /work/upstream/postgres checkout v3.4.9       # no packages needed
#   git -C /work/upstream/node-postgres checkout pg@8.23.0
#   (cd /work/upstream/node-postgres && npx yarn@1.22.22 install --frozen-lockfile \
#       --ignore-scripts && npx tsc --build)              # pg-protocol is TypeScript
#   tests/drivers/upstream.sh /work/upstream/postgres /work/upstream/node-postgres
#
# It prints, per suite and target, the passed / failed / skipped counts, then
# per agent target the tests that fail (or do not run) through the agent but
# not directly, with their error; then the tests that fail directly (the test
# or this environment, not the agent) and the skipped ones with the reason.
# The same report is in OUT/report.txt; OUT/SUITE.TARGET.tsv has one line per
# test (status, name, line, detail), OUT/SUITE.TARGET.log the suite's output,
# OUT/agent.TARGET.log the agent's log, OUT/origin.log the origin's.
#
# The setup, once: an origin (PostgreSQL 15 on a free port on 127.0.0.1,
# wal_level = logical, max_prepared_transactions = 100, TLS with a self-signed
# certificate, trust on its Unix socket, SCRAM over TCP and md5 for the md5
# role, authentication_timeout = 10s) with the roles the suites expect:
# postgres_js_test (the Postgres.js suite's role; it has a password here because
# the agent always asks for one, and the suite finds it in PGPASSWORD),
# postgres_js_test_md5 (an md5 secret), postgres_js_test_scram, node_pg_test
# (node-postgres), scram_test and scram_unicode_test (node-postgres' SCRAM
# tests, made as its CI makes them). None is a superuser; postgres_js_test and
# node_pg_test have REPLICATION (Postgres.js' subscribe tests, and the cache's
# change stream). Before each target, the databases postgres_js_test and
# node_pg_test are made anew, owned by their role, with CREATE EXTENSION
# hyperdrive and the grants the agent needs to look up other roles' secrets
# (docs/agent.md). For each agent target, an agent (TLS for clients with the
# same certificate, a Unix-domain socket, client_login_timeout = 10 as the
# origin's authentication_timeout, auth_type as given, origin_connection_limit
# ORIGIN_LIMIT)
# with a config per database, named after it, so that the suites' database
# names reach them, and a config template1 (node-postgres' gh-issues/130 runs
# psql on template1 to terminate its own backend).
#
# How each suite is run, and the only things changed in how it runs (through
# Node's module hooks, at run time; nothing is written into the checkouts):
#
# - Postgres.js: `node tests/index.js`, with PGHOST/PGPORT/PGUSER/PGPASSWORD of
#   the target. Its harness (tests/test.js) stops running tests after the
#   first failure; a stand-in with the same semantics (file order, one at a
#   time, the per-test timeout, the [expected, got] comparison) runs every
#   test and prints one result line per test. An unhandled rejection (which
#   would end the upstream run) is a "note" naming the test that was running
#   (often not its cause). Its bootstrap (tests/bootstrap.js) would set up the
#   server as a superuser through psql: done here instead, and its exec()
#   (the SSL prefer test switches the origin's ssl off and on) runs psql as
#   the superuser on the origin's Unix socket. Its hard-coded localhost:5432
#   is replaced by the target's address; its `Unix socket` test uses the
#   agent's unix_socket_dir. Skipped: `Multiple hosts` (needs two servers, on
#   ports 5432 and 5433), and through the agent, unless AGENT_AUTH_TYPE=md5, `Login using
#   MD5` (the agent asks every client for auth_type, and an md5 secret cannot
#   answer SCRAM, as with pg_hba scram-sha-256; it passes with md5).
# - node-postgres: every test/integration/**/*-tests.js file, one node process
#   each (as its Makefile's test-integration), with PGHOST/PGPORT/PGUSER/
#   PGPASSWORD/PGDATABASE and SCRAM_TEST_* as its CI sets them. Its Suite
#   (test/suite.js) exits the file at the first failure; a stand-in runs every
#   test of the file and prints one result line per test (an uncaught
#   exception still ends the file: its helper exits then, and the tests after
#   it "did not run"). A file without Suite tests counts as one test (its exit
#   status); a file that exits non-zero or times out after its tests adds a
#   failed "FILE: (exit)" test. Not run, as node-postgres does without their
#   variables: client certificates (PG_CLIENT_CERT_TEST; the agent accepts
#   none). Its SSL tests run (the agent offers TLS); direct SSL negotiation is
#   skipped by the test itself before PostgreSQL 17.
#
# After a failed test (Postgres.js) or test file (node-postgres), the objects
# the suite's role made in its database are dropped (DROP OWNED BY, as the
# superuser, and the grants given again), so that a table a failed test left
# behind does not fail the tests after it: upstream, the first failure ends
# the run.
#
# Tests that need a superuser fail on every target, the direct one too
# (Postgres.js' three subscribe tests: CREATE PUBLICATION ... FOR ALL TABLES).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib.sh
. "$src/scripts/lib.sh"

usage() { sed -n '2,/^# Run as root/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

suites=postgresjs,pg
targets=direct,session,transaction,cache
only=
out=/var/tmp/hyperdrive-upstream/results
keep=
log_statements=
hold=
while [ $# -gt 0 ]; do
	case "$1" in
		--suites) suites=$2; shift 2 ;;
		--targets) targets=$2; shift 2 ;;
		--only) only=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		--keep) keep=1; shift ;;
		--log-statements) log_statements=1; shift ;;
		--hold) hold=1; shift ;;
		-h|--help) usage ;;
		-*) say "unknown option $1"; usage 2 ;;
		*) break ;;
	esac
done
[ $# -eq 2 ] || usage 2
pgjs=$(cd "$1" && pwd) || die "no directory $1"
nodepg=$(cd "$2" && pwd) || die "no directory $2"
pgdir=$nodepg/packages/pg

auth_type=${AGENT_AUTH_TYPE:-scram-sha-256}
agent_log_level=${AGENT_LOG_LEVEL:-info}
origin_limit=${ORIGIN_LIMIT:-20}
pgjs_timeout=${PGJS_TIMEOUT:-600}
pg_file_timeout=${PG_FILE_TIMEOUT:-60}

is_root || die "run as root (PostgreSQL and the agent run as $RUN_AS)"
command -v node >/dev/null || die "node is not installed"
[ -f "$pgjs/tests/index.js" ] && [ -f "$pgjs/tests/test.js" ] && [ -f "$pgjs/src/index.js" ] ||
	die "$pgjs is not a Postgres.js checkout (no tests/index.js, tests/test.js, src/index.js)"
[ -f "$pgdir/test/suite.js" ] && [ -d "$pgdir/test/integration" ] ||
	die "$nodepg is not a node-postgres checkout (no packages/pg/test/suite.js)"
[ -f "$nodepg/node_modules/async/package.json" ] && [ -d "$nodepg/packages/pg-protocol/dist" ] ||
	die "$nodepg: install its packages and build it first (yarn install; npx tsc --build; see the header of $0)"
for s in ${suites//,/ }; do
	case $s in postgresjs|pg) ;; *) die "unknown suite $s (postgresjs, pg)" ;; esac
done
for t in ${targets//,/ }; do
	case $t in direct|session|transaction|cache) ;; *) die "unknown target $t" ;; esac
done

say "building the agent"
make -C "$src" -s PG_CONFIG="$PG_CONFIG" agent >&2 || die "make agent failed"

work=$(mktemp -d /var/tmp/hyperdrive-upstream.XXXXXX)
chown "$RUN_AS" "$work"
chmod 700 "$work"
mkdir -p "$out"
rm -f "$out"/*.tsv "$out"/*.log "$out"/*.stats "$out"/report.txt
data=$work/data
password=hd-upstream-Secret-1
origin_port=$(free_port 55432)
agent_port=$(free_port 56432)
agent_pid=
psql_super() { as_server_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$origin_port" "$@"; }

stop_agent() {
	if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
		kill -TERM "$agent_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$agent_pid" 2>/dev/null || true
	fi
	agent_pid=
}
hold_pid=
cleanup() {
	[ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null
	stop_agent
	[ -f "$data/PG_VERSION" ] && as_server_user "$PG_BINDIR/pg_ctl" -D "$data" -w stop -m immediate >/dev/null 2>&1
	if [ -n "$keep" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# The origin.
say "starting the origin on 127.0.0.1:$origin_port"
as_server_user "$PG_BINDIR/initdb" -D "$data" -U "$RUN_AS" --auth-local=trust \
	--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	die "initdb failed; see $work/initdb.log"
# one self-signed certificate for the origin and the agent (both accept TLS,
# the suites connect with rejectUnauthorized: false)
openssl req -new -x509 -nodes -days 2 -subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$work/server.key" -out "$work/server.crt" >/dev/null 2>&1 || die "openssl req failed"
chown "$RUN_AS" "$work/server.key" "$work/server.crt"
chmod 600 "$work/server.key"
{
	echo "port = $origin_port"
	echo "listen_addresses = '127.0.0.1'"
	echo "unix_socket_directories = '$work'"
	echo "max_connections = 200"
	echo "wal_level = logical"
	echo "max_replication_slots = 20"
	echo "max_wal_senders = 20"
	echo "max_prepared_transactions = 100"
	echo "ssl = on"
	echo "ssl_cert_file = '$work/server.crt'"
	echo "ssl_key_file = '$work/server.key'"
	echo "fsync = off"
	# (default 1min) a client that stops in the middle of its login is closed
	# sooner: node-postgres' sasl-scram-tests.js leaves one behind
	echo "authentication_timeout = 10s"
	echo "log_line_prefix = '%m [%p] %q%u@%d %a: '"
	echo "log_connections = on"
	echo "log_disconnections = on"
	[ -n "$log_statements" ] && echo "log_statement = 'all'"
	output_plugin_setting
} | as_server_user tee -a "$data/postgresql.conf" >/dev/null
as_server_user tee "$data/pg_hba.conf" >/dev/null <<'HBA'
local all all                                   trust
host  all postgres_js_test_md5 127.0.0.1/32     md5
host  all all                  127.0.0.1/32     scram-sha-256
host  all all                  ::1/128          scram-sha-256
HBA
: >"$out/origin.log"
chown "$RUN_AS" "$out/origin.log"
as_server_user "$PG_BINDIR/pg_ctl" -D "$data" -l "$out/origin.log" -w start >/dev/null ||
	die "the origin did not start; see $out/origin.log"

psql_super -d postgres <<SQL
CREATE ROLE postgres_js_test LOGIN REPLICATION PASSWORD '$password';
SET password_encryption = 'md5';
CREATE ROLE postgres_js_test_md5 LOGIN PASSWORD 'postgres_js_test_md5';
RESET password_encryption;
CREATE ROLE postgres_js_test_scram LOGIN PASSWORD 'postgres_js_test_scram';
CREATE ROLE node_pg_test LOGIN REPLICATION PASSWORD '$password';
CREATE ROLE scram_test LOGIN PASSWORD 'test4scram';
CREATE ROLE scram_unicode_test LOGIN PASSWORD U&'IX-\2168';
SQL

# The suites' databases, made anew before each target.
databases="postgres_js_test node_pg_test"
# What puts database $1 (owned by role $1) back as reset_databases leaves it,
# after a failed test: the objects its role made, dropped.
cleanup_sql() {
	printf "SET lock_timeout = '5s'; DROP OWNED BY %s; " "$1"
	printf "GRANT USAGE ON SCHEMA hyperdrive TO %s; " "$1"
	printf "GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO %s;" "$1"
}
reset_databases() {
	local db gid
	psql_super -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE database IN ('postgres_js_test', 'node_pg_test') AND NOT active" >/dev/null
	for db in $databases; do
		if [ "$(psql_super -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ]; then
			for gid in $(psql_super -d "$db" -Atc "SELECT gid FROM pg_prepared_xacts WHERE database = '$db'"); do
				psql_super -d "$db" -c "ROLLBACK PREPARED '$gid'" >/dev/null
			done
			psql_super -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
		fi
		psql_super -d postgres -c "CREATE DATABASE $db OWNER ${db}" >/dev/null
		psql_super -d "$db" >/dev/null <<SQL
CREATE EXTENSION hyperdrive;
GRANT USAGE ON SCHEMA hyperdrive TO $db;
GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO $db;
SQL
	done
}

# ---------------------------------------------------------------------------
# The agent, one per agent target (its own state, the same port).
cp "$src/agent/hyperdrive" "$work/hyperdrive"
chown "$RUN_AS" "$work/hyperdrive"
chmod 755 "$work/hyperdrive"
printf '"ops" "ops-pw"\n' >"$work/users.txt"
chown "$RUN_AS" "$work/users.txt"

start_agent() {
	local target=$1 dir=$work/agent-$1 db user mode caching flags
	as_server_user mkdir -p "$dir/state" "$dir/sock"
	as_server_user tee "$dir/hyperdrive.ini" >/dev/null <<INI
[agent]
listen_addr = 127.0.0.1
listen_port = $agent_port
unix_socket_dir = $dir/sock
client_login_timeout = 10
state_dir = $dir/state
log_level = $agent_log_level
auth_type = $auth_type
tls_cert_file = $work/server.crt
tls_key_file = $work/server.key
admin_users = ops
auth_file = $work/users.txt
query_wait_timeout = 30
INI
	case $target in
		session) mode=session; caching=--caching-disabled ;;
		transaction) mode=transaction; caching=--caching-disabled ;;
		cache) mode=transaction; caching="--max-age 300" ;;
	esac
	for db in $databases template1; do
		user=$db
		flags=$caching
		if [ "$db" = template1 ]; then
			# node-postgres' gh-issues/130-tests.js runs psql on template1, as
			# node_pg_test, to terminate its own backend
			user=node_pg_test
			flags=--caching-disabled
		fi
		# shellcheck disable=SC2086
		as_server_user "$work/hyperdrive" create "$db" -c "$dir/hyperdrive.ini" \
			--connection-string="postgresql://$user:$password@127.0.0.1:$origin_port/$db" \
			--origin-connection-limit "$origin_limit" --pool-mode "$mode" $flags >/dev/null ||
			die "hyperdrive create $db failed"
	done
	: >"$out/agent.$target.log"
	chown "$RUN_AS" "$out/agent.$target.log"
	as_server_user sh -c "'$work/hyperdrive' agent -c '$dir/hyperdrive.ini' \
		>>'$out/agent.$target.log' 2>&1 </dev/null & echo \$! >'$dir/pid'"
	agent_pid=$(cat "$dir/pid")
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$agent_port") 2>/dev/null && break
		kill -0 "$agent_pid" 2>/dev/null || die "the agent exited; see $out/agent.$target.log"
		sleep 0.1
	done
	if [ "$target" = cache ]; then
		# wait (10 s at most) for the change streams, or nothing is served from the cache
		for _ in $(seq 1 100); do
			[ "$(admin_query 'SHOW CACHE' | awk -F'|' '$9 == "yes"' | wc -l)" -ge 2 ] && break
			sleep 0.1
		done
	fi
}

admin_query() {
	PGPASSWORD=ops-pw "$PG_BINDIR/psql" -XAtq -F '|' -h 127.0.0.1 -p "$agent_port" -U ops \
		-d hyperdrive -c "$1" 2>&1 || true
}

# ---------------------------------------------------------------------------
# The stand-ins for the suites' harnesses (written here, not kept as files:
# they belong to this script only).
js=$work/js
mkdir -p "$js"

# Postgres.js: module hooks that replace tests/test.js and tests/bootstrap.js
# and point the hard-coded localhost:5432 at the target.
cat >"$js/pgjs-register.mjs" <<'JS'
import { register } from 'node:module'
register(new URL('./pgjs-hooks.mjs', import.meta.url))
JS
cat >"$js/pgjs-hooks.mjs" <<'JS'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
const tests = pathToFileURL(process.env.HD_PGJS_DIR + '/tests/').href
const here = new URL('./', import.meta.url)
export async function load(url, context, next) {
  if (url === tests + 'test.js' || url === tests + 'bootstrap.js') {
    const ours = url.endsWith('test.js') ? 'pgjs-test.mjs' : 'pgjs-bootstrap.mjs'
    return { format: 'module', source: readFileSync(new URL(ours, here), 'utf8'), shortCircuit: true }
  }
  if (url === tests + 'index.js') {
    const r = await next(url, context)
    const host = process.env.PGHOST, port = process.env.PGPORT
    const source = String(r.source)
      .replaceAll('localhost:5432/', `${host}:${port}/`)
      .replaceAll('socket.connect(5432)', `socket.connect(${port}, '${host}')`)
    return { ...r, source }
  }
  return next(url, context)
}
JS
cat >"$js/pgjs-bootstrap.mjs" <<'JS'
// Stands in for Postgres.js tests/bootstrap.js: the roles and the database are
// made by upstream.sh; exec() runs psql as the superuser on the origin's socket.
import { spawnSync } from 'child_process'
export function exec(cmd, args) {
  const env = { ...process.env, PGHOST: process.env.HD_ADMIN_HOST, PGPORT: process.env.HD_ADMIN_PORT,
    PGUSER: process.env.HD_ADMIN_USER, PGDATABASE: 'postgres', PGPASSWORD: '' }
  const { stderr } = spawnSync(cmd, args, { stdio: 'pipe', encoding: 'utf8', env })
  if (stderr && !stderr.includes('already exists') && !stderr.includes('does not exist') && !stderr.includes('WARNING:'))
    throw stderr
}
JS
cat >"$js/pgjs-test.mjs" <<'JS'
// Stands in for Postgres.js tests/test.js: the same semantics (tests run one
// after another in file order; each must settle within its timeout and
// return [expected, got, ...] with expected === got), but a failure does not
// stop the rest, and each result is a line "##HD <tab> STATUS <tab> name <tab> line <tab> detail".
import util from 'util'
import { spawnSync } from 'child_process'
const skips = JSON.parse(process.env.HD_SKIP || '{}')
const only = process.env.HD_ONLY ? new RegExp(process.env.HD_ONLY) : null
let chain = Promise.resolve()
let total = 0
let done = 0
let current = null
let onlyMode = false

function report(status, name, line, detail = '') {
  detail = String(detail).replace(/\s*\n\s*/g, ' | ').replace(/\t/g, ' ').slice(0, 1500)
  process.stdout.write(`\n##HD\t${status}\t${name}\t${line}\t${detail}\n`)
}
function describe(err) {
  if (!(err instanceof Error)) return util.inspect(err)
  const at = (err.stack || '').split('\n').find(l => l.includes('/tests/index.js:'))
  const where = at ? ' @' + at.replace(/.*\/tests\/index\.js:(\d+):\d+.*/, 'index.js:$1') : ''
  return (err.code ? err.code + ': ' : '') + err.message + where
}
// An unhandled rejection or exception would end the upstream run (Node's
// default): here it is a NOTE line naming the test that was running (often
// not its cause: a client of an earlier test may fail late), and the run goes on.
for (const ev of ['unhandledRejection', 'uncaughtException']) {
  process.on(ev, (err) => {
    report('NOTE', `${ev} while "${current ? current.name : '(between tests)'}" ran`, 0, describe(err))
  })
}
// After a failed test, the database is put back as it was (the upstream
// harness stops there; here a table a failed test left would fail the next
// ones): HD_CLEANUP is run with psql as the superuser.
function cleanup() {
  if (!process.env.HD_CLEANUP) return
  const env = { ...process.env, PGHOST: process.env.HD_ADMIN_HOST, PGPORT: process.env.HD_ADMIN_PORT,
    PGUSER: process.env.HD_ADMIN_USER, PGPASSWORD: '' }
  const r = spawnSync('psql', ['-X', '-q', '-d', process.env.HD_CLEANUP_DB, '-c', process.env.HD_CLEANUP],
    { stdio: 'pipe', encoding: 'utf8', env })
  if (r.status !== 0) report('NOTE', 'cleanup after a failed test', 0, r.stderr)
}

export const nt = () => {}
export const ot = (...rest) => (onlyMode = true, test(true, ...rest))
export const t = (...rest) => test(false, ...rest)
t.timeout = 5

async function test(o, name, options, fn) {
  typeof options !== 'object' && (fn = options, options = {})
  const frame = new Error().stack.split('\n').find(l => l.includes('/tests/index.js:')) || ''
  const line = (frame.match(/index\.js:(\d+):/) || [])[1] || 0
  await 1
  if (onlyMode && !o) return
  total++
  chain = chain.then(async () => {
    if (only && !only.test(name)) return
    if (name in skips) return report('SKIP', name, line, skips[name])
    current = { name }
    let timer
    try {
      const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject('Timed out'), (options.timeout || t.timeout) * 1000)
      })
      const x = await Promise.race([timeout, fn()])
      if (!Array.isArray(x)) throw new Error('Test should return result array')
      const [expected, got] = await Promise.race([timeout, Promise.all(x)])
      if (expected !== got) throw new Error(util.inspect(expected) + ' != ' + util.inspect(got))
      report('PASS', name, line)
    } catch (err) {
      report('FAIL', name, line, err === 'Timed out' ? 'Timed out' : describe(err))
      cleanup()
    } finally {
      clearTimeout(timer)
      current = null
    }
  }).then(() => {
    if (++done === total) {
      report('END', '', 0, `${total} tests`)
      setTimeout(() => process.exit(0), 500)
    }
  })
}
JS

# node-postgres: test/suite.js replaced (before the tests require it) by a
# Suite that runs every test and prints one line per test.
cat >"$js/pg-suite.cjs" <<'JS'
'use strict'
const path = require('path')
const Module = require('module')
const util = require('util')
const file = path.relative(path.join(process.env.HD_PG_DIR, 'test/integration'), path.resolve(process.argv[1]))
const suitePath = path.join(process.env.HD_PG_DIR, 'test/suite.js')
let current = null
let last = null

function report(status, name, detail = '') {
  detail = String(detail).replace(/\s*\n\s*/g, ' | ').replace(/\t/g, ' ').slice(0, 1500)
  process.stdout.write(`\n##HD\t${status}\t${file}: ${name}\t0\t${detail}\n`)
}
function describe(err) {
  if (!(err instanceof Error)) return util.inspect(err)
  const at = (err.stack || '').split('\n').find(l => l.includes('/test/integration/'))
  const where = at ? ' @' + at.replace(/.*\/test\/integration\/([^:]+):(\d+):\d+.*/, '$1:$2') : ''
  return (err.code ? err.code + ': ' : '') + err.message + where
}
// test-helper.js exits the process on an uncaught exception (that is how
// assert.calls() timeouts fail a file): say which test it happened in first
process.prependListener('uncaughtException', (err) => {
  report('FAIL', current ? current.name : last ? `(after "${last}")` : '(before the tests)',
    'uncaught exception: ' + describe(err))
  if (current) current.reported = true
})

class Test {
  constructor(name, action) {
    this.name = name
    this.action = action
    this.timeout = 5000
  }
}
class Suite {
  constructor() {
    console.log('')
    this.chain = new Promise((resolve) => setImmediate(resolve))
  }
  test(name, action) {
    const test = new Test(name, action)
    this.chain = this.chain.then(() => this.run(test))
  }
  run(test) {
    if (!test.action) return report('SKIP', test.name, 'no test function')
    return new Promise((resolve) => {
      let settled = false
      current = test
      const finish = (err) => {
        if (settled) return
        settled = true
        clearTimeout(tid)
        current = null
        last = test.name
        if (!test.reported) err ? report('FAIL', test.name, describe(err)) : report('PASS', test.name)
        resolve()
      }
      const tid = setTimeout(() => finish(new Error(`did not complete within ${test.timeout}ms`)), test.timeout)
      try {
        if (!test.action.length) {
          const result = test.action.call(test)
          if (result && result.then) result.then(() => finish(), (e) => finish(e || new Error('Unhandled promise rejection')))
          else finish()
        } else {
          test.action.call(test, (err) => finish(err))
        }
      } catch (e) {
        finish(e)
      }
    })
  }
}
const m = new Module(suitePath, module)
m.filename = suitePath
m.loaded = true
m.exports = Suite
require.cache[suitePath] = m
JS

# ---------------------------------------------------------------------------
# Running the suites. Each writes $out/SUITE.TARGET.tsv: status, test, line, detail.
run_postgresjs() {
	local target=$1 port=$2 log=$out/postgresjs.$1.log skip socket=$work
	skip='"Multiple hosts": "needs two servers, on ports 5432 and 5433"'
	if [ "$target" != direct ]; then
		socket=$work/agent-$target/sock
		[ "$auth_type" = md5 ] ||
			skip="$skip, \"Login using MD5\": \"an md5 secret cannot answer SCRAM: the agent asks for auth_type = $auth_type (AGENT_AUTH_TYPE=md5 to run it)\""
	fi
	say "postgresjs on $target: node tests/index.js (at most ${pgjs_timeout}s)"
	(
		cd "$pgjs/tests" &&
		env PATH="$PG_BINDIR:$PATH" PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres_js_test \
			PGPASSWORD="$password" PGSOCKET="$socket" \
			HD_ADMIN_HOST="$work" HD_ADMIN_PORT="$origin_port" HD_ADMIN_USER="$RUN_AS" \
			HD_PGJS_DIR="$pgjs" HD_SKIP="{$skip}" HD_ONLY="$only" NO_COLOR=1 \
			HD_CLEANUP="$(cleanup_sql postgres_js_test)" HD_CLEANUP_DB=postgres_js_test \
			timeout -k 10 "$pgjs_timeout" node --import "$js/pgjs-register.mjs" index.js
	) >"$log" 2>&1
	local rc=$?
	grep -a '^##HD' "$log" | grep -av '^##HD	END' | cut -f2- >"$out/postgresjs.$target.tsv" || true
	if ! grep -aq '^##HD	END' "$log"; then
		printf 'FAIL\t(the run)\t0\tdid not finish (exit %s; see %s)\n' "$rc" "$log" >>"$out/postgresjs.$target.tsv"
	fi
}

run_pg() {
	local target=$1 port=$2 log=$out/pg.$1.log tsv=$out/pg.$1.tsv f rc lines
	: >"$log"
	: >"$tsv"
	say "pg on $target: packages/pg/test/integration, one node per file (at most ${pg_file_timeout}s each)"
	while IFS= read -r f; do
		rel=${f#test/integration/}
		[ -n "$only" ] && ! [[ $rel =~ $only ]] && continue
		printf '\n=== %s\n' "$rel" >>"$log"
		rc=0
		(
			cd "$pgdir" &&
			env PGHOST=127.0.0.1 PGPORT="$port" PGUSER=node_pg_test PGPASSWORD="$password" \
				PGDATABASE=node_pg_test SCRAM_TEST_PGUSER=scram_test SCRAM_TEST_PGPASSWORD=test4scram \
				SCRAM_TEST_PGUSER_UNICODE=scram_unicode_test SCRAM_TEST_PGPASSWORD_UNICODE=$'IX-\u2168' \
				HD_PG_DIR="$pgdir" NO_COLOR=1 \
				timeout -k 10 "$pg_file_timeout" node -r "$js/pg-suite.cjs" "$f"
		) >"$work/pg-file.log" 2>&1 || rc=$?
		cat "$work/pg-file.log" >>"$log"
		if [ "$rc" -ne 0 ] || grep -aq '^##HD	FAIL' "$work/pg-file.log"; then
			# what a failed file made must not fail the next ones
			psql_super -d node_pg_test -c "$(cleanup_sql node_pg_test)" >>"$log" 2>&1 ||
				echo "(cleanup failed)" >>"$log"
		fi
		lines=$(grep -a '^##HD' "$work/pg-file.log" | cut -f2- || true)
		if [ -z "$lines" ]; then
			if [ "$rc" -eq 0 ]; then
				printf 'PASS\t%s\t0\t\n' "$rel" >>"$tsv"
			else
				printf 'FAIL\t%s\t0\texit %s: %s\n' "$rel" "$rc" \
					"$(tail -c 600 "$work/pg-file.log" | tr '\n\t' '  ')" >>"$tsv"
			fi
		else
			printf '%s\n' "$lines" >>"$tsv"
			if [ "$rc" -ne 0 ] && ! grep -aq '^##HD	FAIL' "$work/pg-file.log"; then
				printf 'FAIL\t%s: (exit)\t0\texit %s%s: %s\n' "$rel" "$rc" \
					"$([ "$rc" -eq 124 ] && echo " (timeout: still running)")" \
					"$(grep -av '^##HD' "$work/pg-file.log" | tail -c 600 | tr '\n\t' '  ')" >>"$tsv"
			fi
		fi
	done < <(cd "$pgdir" && find test/integration -name '*-tests.js' | LC_ALL=C sort)
}

for target in ${targets//,/ }; do
	say ""
	say "=== target: $target ==="
	reset_databases
	if [ "$target" = direct ]; then
		port=$origin_port
	else
		start_agent "$target"
		port=$agent_port
	fi
	for s in ${suites//,/ }; do
		"run_$s" "$target" "$port" || true
	done
	if [ "$target" != direct ]; then
		{
			echo "SHOW STATS:"; admin_query 'SHOW STATS'
			[ "$target" = cache ] && { echo "SHOW CACHE:"; admin_query 'SHOW CACHE'; }
		} >"$out/agent.$target.stats"
		[ -n "$hold" ] && [ "$target" = "${targets##*,}" ] || stop_agent
	fi
done

# ---------------------------------------------------------------------------
# The report.
say ""
report() {
	local s t base
	for s in ${suites//,/ }; do
		echo "== $s"
		for t in ${targets//,/ }; do
			[ -f "$out/$s.$t.tsv" ] || continue
			awk -F'\t' -v t="$t" '
				$1 == "PASS" { p++ } $1 == "FAIL" { f++ } $1 == "SKIP" { k++ } $1 == "NOTE" { n++ }
				END { printf "  %-12s %4d passed, %3d failed, %3d skipped%s\n", t, p, f, k,
					n ? sprintf(" (%d notes)", n) : "" }' "$out/$s.$t.tsv"
		done
		base=$out/$s.direct.tsv
		if [ -f "$base" ]; then
			for t in ${targets//,/ }; do
				[ "$t" = direct ] && continue
				[ -f "$out/$s.$t.tsv" ] || continue
				echo "  -- fail through the agent ($t) but not directly:"
				awk -F'\t' 'NR == FNR { if ($1 == "FAIL") bad[$2] = 1; if ($1 == "PASS") ok[++nok] = $2; next }
					{ seen[$2] = 1 }
					$1 == "FAIL" && !($2 in bad) { printf "     %s%s\n        %s\n", $2, ($3 ? " (line " $3 ")" : ""), $4; n++ }
					END {
						for (i = 1; i <= nok; i++) if (!(ok[i] in seen)) {
							printf "     %s\n        did not run (it passes directly)\n", ok[i]; n++
						}
						if (!n) print "     (none)"
					}' "$base" "$out/$s.$t.tsv"
				awk -F'\t' '$1 == "NOTE" { printf "     note: %s\n        %s\n", $2, $4 }' "$out/$s.$t.tsv"
			done
			echo "  -- fail directly (the test itself, or the environment: not the agent):"
			awk -F'\t' '$1 == "FAIL" { printf "     %s%s\n        %s\n", $2, ($3 ? " (line " $3 ")" : ""), $4; n++ }
				END { if (!n) print "     (none)" }' "$base"
		fi
		echo "  -- skipped:"
		cat "$out/$s".*.tsv 2>/dev/null | awk -F'\t' '$1 == "SKIP" && !seen[$2 FS $4]++ { printf "     %s: %s\n", $2, $4; n++ }
			END { if (!n) print "     (none)" }'
	done
}
report | tee "$out/report.txt"
say ""
say "results: $out (report.txt, SUITE.TARGET.tsv and .log, agent.TARGET.log, origin.log)"
if [ -n "$hold" ]; then
	say ""
	say "holding (Ctrl-C to stop); the last target ($target) on port $port:"
	say "  PATH=$PG_BINDIR:\$PATH PGHOST=127.0.0.1 PGPORT=$port PGPASSWORD=$password PGSOCKET=$work"
	say "  Postgres.js: PGUSER=postgres_js_test, in $pgjs/tests:"
	say "    HD_ADMIN_HOST=$work HD_ADMIN_PORT=$origin_port HD_ADMIN_USER=$RUN_AS HD_PGJS_DIR=$pgjs \\"
	say "    HD_ONLY='^name\$' node --import $js/pgjs-register.mjs index.js"
	say "  node-postgres: PGUSER=node_pg_test PGDATABASE=node_pg_test, in $pgdir:"
	say "    HD_PG_DIR=$pgdir node -r $js/pg-suite.cjs test/integration/FILE"
	say "  origin as superuser: psql -h $work -p $origin_port -U $RUN_AS postgres"
	sleep infinity &
	hold_pid=$!
	wait "$hold_pid" || true
fi
