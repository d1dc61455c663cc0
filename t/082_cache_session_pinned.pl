# The result cache for clients of a session-pooling config (docs/cache.md,
# "Session pooling"): such a client holds its own origin connection and is
# answered from the cache only while that connection is idle, outside a
# transaction block, with its state checked since its last statement; the
# key carries that state. Temporary objects, settings changed where the
# agent cannot see them, SET ROLE and transaction blocks go to the origin;
# pipelined replies stay in order; a write is read back; after hits the
# session's own prepared statements and settings still work. Pinned clients
# (either pooling mode) are answered when their pin cannot change a
# SELECT's result (an advisory lock, LISTEN), and not once it can (counted).
# And a hit writes nothing to the store (/metrics).
use strict;
use warnings;

use File::Basename qw(dirname);
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use PgWire;

CacheHarness::setup(tag => '082_cache_session_pinned', node => 'origin', extra_sql => <<'SQL');
CREATE ROLE noread NOLOGIN;
GRANT noread TO app;
SET ROLE app;
CREATE TABLE t (v text);
INSERT INTO t VALUES ('schema public');
-- what a function does to the session, unseen in the statement's text
CREATE FUNCTION set_sp(p text) RETURNS text LANGUAGE plpgsql
  AS $$BEGIN PERFORM pg_catalog.set_config('search_path', p, false); RETURN p; END$$;
CREATE FUNCTION set_tz(p text) RETURNS text LANGUAGE plpgsql
  AS $$BEGIN PERFORM pg_catalog.set_config('timezone', p, false); RETURN p; END$$;
CREATE FUNCTION mk_temp() RETURNS text LANGUAGE plpgsql
  AS $$BEGIN EXECUTE 'CREATE TEMP TABLE items (id int, name text)';
  EXECUTE 'INSERT INTO items VALUES (1, ''temp apple'')'; RETURN 'made'; END$$;
RESET ROLE;
SQL
app_config('sess', 'session pooling, caching on', '--pool-mode', 'session');
app_config('one', 'transaction pooling, one origin connection', '--origin-connection-limit', '1');
ok(start_agent(), 'the agent listens');
ok(stream_ready('one'), 'config one\'s change stream connects and is fresh');
ok(stream_ready('sess'),
	'config sess\'s change stream connects');

my $ITEM = 'SELECT name FROM items WHERE id = 1';
my $TZ = q{SELECT '2020-01-01 00:00:00+00'::timestamptz::text};

# One Query on $c: its rows' first values joined by ",", or "ERROR: <sqlstate>".
sub ask
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql);
	return "ERROR: $r->{errors}[0]{C}" if @{ $r->{errors} };
	return join(',', map { $_->[0] // 'NULL' } @{ $r->{rows} });
}

# $sql on $c; its answer and how config $cfg's hits, misses and bypass:$why grew.
sub counted
{
	my ($c, $sql, $cfg, $why) = @_;
	$why //= "none";
	my $before = cache_status($cfg);
	my $got = ask($c, $sql);
	my $after = cache_status($cfg);
	return ($got, $after->{hits} - $before->{hits}, $after->{misses} - $before->{misses},
		($after->{by}{"bypass:$why"} // 0) - ($before->{by}{"bypass:$why"} // 0));
}

sub session { return raw_connect('app', $PW, 'sess'); }

# ---------------------------------------------------------------------------
# Hits in session mode

my $s1 = session();
my ($got, $hits, $misses) = counted($s1, $ITEM, 'sess');
is($got, 'apple', 'session client: the first answer is the origin\'s');
($got, $hits, $misses) = counted($s1, $ITEM, 'sess');
$hits or ($got, $hits, $misses) = counted($s1, $ITEM, 'sess');    # (a first miss may analyze)
is_deeply([ $got, $hits, $misses ], [ 'apple', 1, 0 ],
	'session client: the same statement again is a hit (hits grow, misses do not)');
my $s2 = session();
($got, $hits, $misses) = counted($s2, $ITEM, 'sess');
is_deeply([ $got, $hits, $misses ], [ 'apple', 1, 0 ],
	'another session of the same role and settings is served the entry');

# the extended protocol: a named statement the cache answers, then used again
my $ext = pq_parse('q1', 'SELECT name FROM items WHERE id = $1', 23)
  . pq_bind('q1', ['2']) . pq_describe('P', '') . pq_execute('', 0) . pq_sync();
w_send($s2, $ext);
my $r = w_result($s2);
is($r->{rows}[0][0], 'pear', 'extended protocol in session mode: the answer');
my $h0 = cache_status('sess')->{hits};
w_send($s2, pq_bind('q1', ['2']) . pq_execute('', 0) . pq_sync());
$r = w_result($s2);
w_send($s2, pq_bind('q1', ['2']) . pq_execute('', 0) . pq_sync());
$r = w_result($s2);
is($r->{rows}[0][0], 'pear', 'its named statement bound again: the same answer');
ok(cache_status('sess')->{hits} > $h0, 'and a hit');
w_send($s2, pq_bind('q1', ['3']) . pq_execute('', 0) . pq_sync());
$r = w_result($s2);
is($r->{rows}[0][0], 'plum', 'bound with another value: that row');

# after hits, the session's own work goes on as before
ask($s2, 'BEGIN');
w_send($s2, pq_bind('q1', ['1']) . pq_execute('', 0) . pq_sync());
$r = w_result($s2);
ask($s2, 'COMMIT');
is_deeply([ $r->{rows}[0][0], scalar @{ $r->{errors} } ], [ 'apple', 0 ],
	'its named statement, prepared by a hit, runs on the origin inside a transaction block');
is(ask($s2, 'PREPARE mine(int) AS SELECT $1 + 1'), '', 'SQL PREPARE after hits');
is(ask($s2, 'EXECUTE mine(41)'), '42', 'its EXECUTE works');
is(ask($s2, 'SHOW search_path'), '"$user", public', 'its settings are intact');

# ---------------------------------------------------------------------------
# A temporary table shadowing a cached table's name

my $tmp1 = session();
is(ask($tmp1, 'CREATE TEMP TABLE items (id int, name text)'), '', 'a temp table named items');
ask($tmp1, q{INSERT INTO items VALUES (1, 'temp apple')});
for (1 .. 2)
{
	my ($g, $h, $m, $by) = counted($tmp1, $ITEM, 'sess', 'pinned:temporary object');
	is_deeply([ $g, $h, $by ], [ 'temp apple', 0, 1 ],
		"temp table ($_): the session's own rows, not the cached ones (bypass:pinned:temporary object)");
}
my $tmp2 = session();
ask($tmp2, $ITEM);    # the check after its first statement
is(ask($tmp2, 'SELECT mk_temp()'), 'made', 'a function creates a temp table named items');
for (1 .. 2)
{
	my ($g, $h) = counted($tmp2, $ITEM, 'sess');
	is_deeply([ $g, $h ], [ 'temp apple', 0 ],
		"temp table made unseen ($_): its rows, not the cache's (the state check saw it)");
}
is(ask($s2, $ITEM), 'apple', 'another session afterwards: the real table');
is(ask(session(), $ITEM), 'apple', 'and a new one');

# ---------------------------------------------------------------------------
# Settings changed where the agent cannot track them

my $p = session();
ask($p, 'SELECT v FROM t') for 1 .. 2;
is(ask($p, 'SELECT v FROM t'), 'schema public', 'search_path: the default schema\'s row');
is(ask($p, q{SELECT set_sp('sb')}), 'sb', 'search_path changed by a function');
is(ask($p, 'SELECT v FROM t'), 'schema b', 'search_path set by a function: its schema\'s row');

my $p2 = session();
is(ask($p2, q{SELECT set_config('search_path', 'sa', false)}), 'sa', 'set_config(..., false)');
is(ask($p2, 'SELECT v FROM t'), 'schema a', 'search_path set by set_config(): its schema\'s row');

my $p3 = session();
ask($p3, 'BEGIN');
ask($p3, 'SET search_path = sb');
ask($p3, 'COMMIT');
is(ask($p3, 'SELECT v FROM t'), 'schema b', 'search_path SET inside a transaction block');

my $p4 = session();
ask($p4, 'SET search_path = sa');
ask($p4, 'SELECT v FROM t');
is(ask($p4, 'SELECT v FROM t'), 'schema a', 'a tracked SET: its schema\'s row');
($got, $hits) = counted($p4, 'SELECT v FROM t', 'sess');
is_deeply([ $got, $hits ], [ 'schema a', 1 ], 'served from the cache under its own key');
ask($p4, 'RESET search_path');
is(ask($p4, 'SELECT v FROM t'), 'schema public', 'after RESET: the default schema\'s row');
is(ask($s2, 'SELECT v FROM t'), 'schema public', 'and another session: the default\'s');

my $z = session();
ask($z, $TZ) for 1 .. 2;
my $utc = ask($z, $TZ);
is(ask($z, q{SELECT set_tz('Asia/Tokyo')}), 'Asia/Tokyo', 'timezone changed by a function');
is(ask($z, $TZ), '2020-01-01 09:00:00+09', "timezone: the session's, not the cached $utc");

# ---------------------------------------------------------------------------
# SET ROLE

my $role = session();
ask($role, $ITEM) for 1 .. 2;
ask($role, 'SET ROLE noread');
is(ask($role, $ITEM), 'ERROR: 42501', 'SET ROLE to a role that cannot read: permission denied');
ask($role, 'RESET ROLE');
is(ask($role, $ITEM), 'apple', 'RESET ROLE: readable again (from the origin: the client is pinned)');

# ---------------------------------------------------------------------------
# Order, transaction blocks, writes

my $pipe = session();
ask($pipe, $ITEM) for 1 .. 2;
w_send($pipe, pq_query(q{SELECT 'slow' FROM pg_sleep(0.3)}) . pq_query($ITEM));
my $r1 = w_result($pipe);
my $r2 = w_result($pipe);
is_deeply([ $r1->{rows}[0][0], $r2->{rows}[0][0] ], [ 'slow', 'apple' ],
	'a cacheable statement pipelined behind a running one: answered in order');

my $txn = session();
ask($txn, $ITEM) for 1 .. 2;
ask($txn, 'BEGIN');
my ($in_txn, $h_txn, $m_txn, $by_txn) = counted($txn, $ITEM, 'sess', 'transaction');
ask($txn, 'COMMIT');
is_deeply([ $in_txn, $h_txn, $by_txn ], [ 'apple', 0, 1 ],
	'a SELECT in a transaction block goes to the origin (bypass:transaction)');

my $w = session();
ask($w, $ITEM) for 1 .. 2;
ask($w, q{UPDATE items SET name = 'apple 2' WHERE id = 1});
is(ask($w, $ITEM), 'apple 2', 'a session reads its own write, not the cached row');
ask($w, q{UPDATE items SET name = 'apple' WHERE id = 1});
is(ask($w, $ITEM), 'apple', 'and its write back');

# ---------------------------------------------------------------------------
# Pinned clients of a transaction-pooling config whose pin cannot change a
# SELECT's result (session.h): answered on their own connection

my $pin = raw_connect('app', $PW, 'one');
ask($pin, $ITEM) for 1 .. 3;
is(ask($pin, 'SELECT pg_advisory_lock(42)'), '', 'a transaction-pooling client takes an advisory lock (pinned)');
ask($pin, $ITEM);    # its key carries its state now: a miss first
my ($pg, $ph, $pm) = counted($pin, $ITEM, 'one');
is_deeply([ $pg, $ph, $pm ], [ 'apple', 1, 0 ], 'pinned by an advisory lock: a hit');
my $other = raw_connect('app', $PW, 'one');
my ($sg, $sh);
($pg, $ph) = counted($other, $ITEM, 'one');
is_deeply([ $pg, $ph ], [ 'apple', 1 ],
	'another client of the one-connection config, while the pinned one holds it: a hit');
is(ask($pin, 'SELECT pg_advisory_unlock(42)::text'), 'true', 'the lock is still the pinned client\'s');
ask($pin, 'SELECT v FROM t') for 1 .. 2;
($sg, $sh) = counted($pin, 'SELECT v FROM t', 'one');
is_deeply([ $sg, $sh ], [ 'schema public', 1 ], 'pinned: the default schema\'s row, cached');
is(ask($pin, q{SELECT set_sp('sb')}), 'sb', 'then a function changes its search_path');
my ($sm, $sby);
($sg, $sh, $sm, $sby) = counted($pin, 'SELECT v FROM t', 'one', 'pinned:session state');
is_deeply([ $sg, $sh, $sby ], [ 'schema b', 0, 1 ],
	'not answered from the cache any more (bypass:pinned:session state): its schema\'s row');
w_close($pin);

my $lis = session();
ask($lis, $ITEM);
is(ask($lis, 'LISTEN ch'), '', 'a session client LISTENs (pinned, cache-safe)');
ask($lis, $ITEM) for 1 .. 2;
($got, $hits) = counted($lis, $ITEM, 'sess');
is_deeply([ $got, $hits ], [ 'apple', 1 ], 'LISTEN: a hit');
ask($s2, 'NOTIFY ch');
my $answers_ok = 1;
ok(wait_for(sub {
		my $nr = w_query($lis, $ITEM);
		$answers_ok &&= ($nr->{rows}[0][0] // '') eq 'apple';
		return scalar grep { $_->[0] eq 'A' } @{ $nr->{msgs} };
	}, 10) && $answers_ok, 'its notification reaches it, its answers right meanwhile');
ask($lis, 'SET ROLE noread');
my ($lg, $lh, $lm, $lby) = counted($lis, $ITEM, 'sess', 'pinned:setting');
is_deeply([ $lg, $lh, $lby ], [ 'ERROR: 42501', 0, 1 ],
	'pinned by LISTEN, then SET ROLE: permission denied from the origin (bypass:pinned:setting)');

my $tmpp = raw_connect('app', $PW, 'one');
ask($tmpp, 'CREATE TEMP TABLE items (id int, name text)');
ask($tmpp, q{INSERT INTO items VALUES (1, 'temp apple')});
my ($tg, $th, $tm, $tby) = counted($tmpp, $ITEM, 'one', 'pinned:temporary object');
is_deeply([ $tg, $th, $tby ], [ 'temp apple', 0, 1 ],
	'a transaction-pooling client with a temp table: its rows (bypass:pinned:temporary object)');
w_close($tmpp);

# ---------------------------------------------------------------------------
# A hit writes nothing to the store: 1,000 hits, and the write transactions
# besides the timer's LRU flushes (at most one a second) do not grow

sub metrics
{
	my $res = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$mport/metrics");
	my %m;
	$m{$1} = $2 while $res->{content} =~ /^(hyperdrive_cache_store_\w+) (\d+)$/mg;
	return \%m;
}
my $hot = session();
ask($hot, $ITEM) for 1 .. 3;
my $lsn0 = cache_status('sess')->{applied_lsn};
my $m0 = metrics();
my $c0 = cache_status('sess');
my $all = 1;
for (1 .. 1000) { $all &&= ask($hot, $ITEM) eq 'apple'; }
my $c1 = cache_status('sess');
my $m1 = metrics();
ok($all && $c1->{hits} - $c0->{hits} == 1000 && $c1->{misses} == $c0->{misses},
	'1,000 hits');
SKIP:
{
	skip 'the stream applied changes meanwhile (its position is a write)', 1
	  if cache_status('sess')->{applied_lsn} ne $lsn0 || cache_status()->{applied_lsn} ne $lsn0;
	is($m1->{hyperdrive_cache_store_write_txns_total} - $m0->{hyperdrive_cache_store_write_txns_total},
		$m1->{hyperdrive_cache_store_lru_flushes_total} - $m0->{hyperdrive_cache_store_lru_flushes_total},
		'1,000 hits: no write transaction but the timer\'s LRU flushes');
}

done_testing();
