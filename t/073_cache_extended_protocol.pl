# The result cache in the extended query protocol (docs/cache.md): the
# shapes drivers send for one statement are served from the cache with the
# exact bytes the origin sends, keyed by text, parameter types, values and
# formats and result formats; everything else is forwarded and counted.
#
# Each answer is compared byte for byte with the same request sent through
# the config "nocache" (the same origin, caching off).
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use PgWire;

CacheHarness::setup(tag => '073_cache_extended_protocol', node => 'origin', extra_sql => <<'SQL');
SET ROLE app;
CREATE TABLE nums (id int PRIMARY KEY, n numeric, t timestamp, b bytea);
INSERT INTO nums SELECT g, g * 1.5, '2024-01-01'::timestamp + g * interval '1 day',
  decode(lpad(to_hex(g), 2, '0'), 'hex') FROM generate_series(1, 50) g;
-- IMMUTABLE by its word (cache-analysis.md), but it says something as it runs
CREATE FUNCTION noisy(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE
  AS $$BEGIN RAISE NOTICE 'noisy %', v; RETURN v; END$$;
RESET ROLE;
SQL
ok(start_agent(), 'the agent listens');
# connected, and a first freshness probe applied (lag -1: not known yet, and
# hits wait for it: the first request would be a bypass, not a miss)
ok(stream_ready(),
	'the config\'s change stream connects and is known to be fresh');

my $c = raw_connect('app', $PW, 'app');       # caching on
my $o = raw_connect('app', $PW, 'nocache');   # the origin's answer
# the settings sync's ParameterStatus before the first replies: not part of them
strip_status(w_exchange($_, pq_query('SELECT 1'))) for ($c, $o);

my $Q = 'SELECT id, n, t, b FROM nums WHERE id = $1';

# Send the same bytes on both connections; the cached side's replies and its
# SHOW CACHE counters before and after.
sub exchange
{
	my ($got, $want, $before, $after) = exchange_both($c, $o, @_);
	return ($got, $want, $after->{hits} - $before->{hits}, $after->{misses} - $before->{misses},
		$before, $after);
}

# A request sent three times: a miss, then two hits, every answer equal to the origin's.
sub cached_ok
{
	my ($name, $bytes, %opt) = @_;
	my ($g1, $w1, $h1, $m1) = exchange($bytes);
	my ($g2, $w2, $h2) = exchange($bytes);
	my ($g3, $w3, $h3) = exchange($bytes);
	is($m1, 1, "$name: first a miss");
	is($h2 + $h3, 2, "$name: then two hits");
	is(unpack('H*', $g1), unpack('H*', $w1), "$name: the miss answers as the origin does");
	is(unpack('H*', $g2), unpack('H*', $w1), "$name: the hit is byte-identical");
	is(unpack('H*', $g3), unpack('H*', $w3), "$name: and so is the next one");
	like($g2, $opt{like}, "$name: the answer is the expected one") if $opt{like};
	return $g2;
}

# ---------------------------------------------------------------------------
# The shapes drivers send.

# node-postgres and libpq (pgbench -M extended): unnamed, types left to infer
cached_ok('unnamed Parse/Bind/Describe P/Execute/Sync, type inferred',
	pq_parse('', $Q) . pq_bind('', ['7']) . pq_describe('P') . pq_execute() . pq_sync(),
	like => qr/10\.5/);

# the same statement with other values is another entry, never the first's bytes
my $other = cached_ok('another parameter value',
	pq_parse('', $Q) . pq_bind('', ['8']) . pq_describe('P') . pq_execute() . pq_sync(),
	like => qr/12\.0/);
unlike($other, qr/10\.5/, 'another value: not the first value\'s rows');

# binary results: another entry
my $bin = cached_ok('binary result format',
	pq_parse('', $Q) . pq_bind('', ['7'], undef, [], [1]) . pq_describe('P') . pq_execute() . pq_sync());
unlike($bin, qr/10\.5/, 'binary result format: not the text answer');

# binary parameter with its type given
cached_ok('binary parameter, type int4',
	pq_parse('', $Q, 23) . pq_bind('', [pack('N', 9)], undef, [1]) . pq_describe('P') . pq_execute() .
	  pq_sync(),
	like => qr/13\.5/);

# a NULL parameter
cached_ok('NULL parameter',
	pq_parse('', 'SELECT count(*) FROM nums WHERE id = $1 OR $1 IS NULL', 23) .
	  pq_bind('', [undef]) . pq_describe('P') . pq_execute() . pq_sync());

# libpq's PQprepare + PQexecPrepared (pgbench -M prepared): a named statement
{
	my $prep = pq_parse('lq1', $Q, 23) . pq_sync();
	my ($g, $w) = exchange($prep);
	is(unpack('H*', $g), unpack('H*', $w), 'prepare a named statement: same answer');
	cached_ok('Bind of a named statement, Describe P, Execute, Sync',
		pq_bind('lq1', ['10']) . pq_describe('P') . pq_execute() . pq_sync(),
		like => qr/15\.0/);
}

# Postgres.js: Parse with a name, Describe S, Bind, Execute, Sync; then Bind, Execute, Sync
cached_ok('Parse, Describe S, Bind, Execute, Sync (named)',
	pq_parse('pj1', $Q, 0) . pq_describe('S', 'pj1') . pq_bind('pj1', ['11']) . pq_execute() .
	  pq_sync(),
	like => qr/16\.5/);
cached_ok('Bind, Execute, Sync of the statement a hit named',
	pq_bind('pj1', ['12']) . pq_execute() . pq_sync(), like => qr/18\.0/);
cached_ok('Parse, Describe S, Bind, Execute, Sync (unnamed)',
	pq_parse('', $Q) . pq_describe('S') . pq_bind('', ['13']) . pq_execute() . pq_sync(),
	like => qr/19\.5/);

# a statement named by a hit is the client's: it runs later in a transaction
{
	my $q = 'SELECT n FROM nums WHERE id = $1 + 0';
	my $b = pq_parse('byhit', $q) . pq_bind('byhit', ['14']) . pq_execute() . pq_sync();
	exchange($b) for 1 .. 2;	# the second time a hit names it
	my $tx = pq_query('BEGIN') . pq_bind('byhit', ['15']) . pq_execute() . pq_sync() .
	  pq_query('COMMIT');
	my ($g, $w) = exchange($tx, 3);
	is(unpack('H*', $g), unpack('H*', $w), 'a statement named by a hit runs in a transaction');
	like($g, qr/22\.5/, 'with the right rows');
}

# ---------------------------------------------------------------------------
# Pipelines that mix hits, misses and forwarded statements keep the order.
{
	my $hit = pq_parse('', $Q) . pq_bind('', ['7']) . pq_describe('P') . pq_execute() .
	  pq_sync();
	my $miss = pq_parse('', $Q) . pq_bind('', ['20']) . pq_describe('P') . pq_execute() .
	  pq_sync();
	my $fwd = pq_parse('', 'SELECT id FROM nums WHERE id = $1 FOR SHARE') .
	  pq_bind('', ['21']) . pq_describe('P') . pq_execute() . pq_sync();
	my $simple = pq_query('SELECT id, n FROM nums WHERE id = 22');
	# once a statement is forwarded, the rest of the pipeline follows it on
	# its origin connection (a hit cannot overtake replies still to come)
	my $pipe = $hit . $miss . $hit . $simple . $miss . $fwd . $hit;
	my ($g, $w, $h, $m) = exchange($pipe, 7);
	is(unpack('H*', $g), unpack('H*', $w), 'a pipeline of hits, misses and forwards: same bytes, same order');
	is($h, 3, 'the pipeline: three hits (one after a fill in the same pipeline)');
	is($m, 2, 'and two misses (extended and simple)');
}

# ---------------------------------------------------------------------------
# What is forwarded, and counted.
sub forwarded_ok
{
	my ($name, $bytes, $reason, $nz) = @_;
	my ($g, $w, $h, $m, $before, $after) = exchange($bytes, $nz);
	is(unpack('H*', $g), unpack('H*', $w), "$name: the origin's answer");
	($g, $w, $h, $m, $before, $after) = exchange($bytes, $nz);
	is($h, 0, "$name: never a hit");
	is(($after->{by}{$reason} // 0) - ($before->{by}{$reason} // 0), 1, "$name: counted as $reason")
	  or diag(explain($after->{by}));
}

forwarded_ok('row limit',
	pq_parse('', $Q) . pq_bind('', ['7']) . pq_execute('', 1) . pq_sync(),
	'bypass:extended:row limit');
forwarded_ok('two statements before one Sync',
	pq_parse('', $Q) . pq_bind('', ['7']) . pq_execute() . pq_bind('', ['8']) .
	  pq_execute() . pq_sync(),
	'bypass:extended:several statements');
forwarded_ok('a stable function',
	pq_parse('', 'SELECT now() > $1::timestamptz') . pq_bind('', ['2020-01-01']) .
	  pq_execute() . pq_sync(),
	'bypass:uncacheable:stable function');
forwarded_ok('a write',
	pq_parse('', 'UPDATE nums SET n = n WHERE id = $1') . pq_bind('', ['49']) .
	  pq_execute() . pq_sync(),
	'bypass:uncacheable:not a SELECT');
forwarded_ok('a statement the client never prepared',
	pq_bind('nosuch', []) . pq_execute() . pq_sync(),
	'bypass:extended:unknown statement');
{
	# in a transaction block: every Execute is counted once
	my ($g, $w, $h, $m, $before, $after) = exchange(pq_query('BEGIN') . pq_parse('', $Q) .
		  pq_bind('', ['7']) . pq_execute() . pq_sync() . pq_query('COMMIT'), 3);
	is(unpack('H*', $g), unpack('H*', $w), 'in a transaction block: the origin\'s answer');
	is($h, 0, 'in a transaction block: no hit');
	is(($after->{by}{'bypass:transaction'} // 0) - ($before->{by}{'bypass:transaction'} // 0), 2,
		'in a transaction block: the Execute and COMMIT counted as transaction');
}

# Postgres.js describes first with a Flush, then binds: forwarded as it is
{
	my $before = cache_status();
	my @got;
	for my $s ($c, $o)
	{
		w_send($s, pq_parse('pjf', 'SELECT n FROM nums WHERE id = $1 + 1') . pq_describe('S', 'pjf') .
		  pq_flush());
		my $r = '';
		while (1)
		{
			my ($type, $body) = w_msg($s, 60);
			$r .= fmsg($type, $body);
			last if $type eq 'T' || $type eq 'n' || $type eq 'E' || length $type > 1;
		}
		$r .= w_exchange($s, pq_bind('pjf', ['1']) . pq_execute() . pq_sync());
		push @got, $r;
	}
	is(unpack('H*', $got[0]), unpack('H*', $got[1]), 'Parse, Describe S, Flush, then Bind, Execute, Sync: the origin\'s answer');
	is(cache_status()->{by}{'bypass:transaction'} - ($before->{by}{'bypass:transaction'} // 0), 1,
		'the Execute after a Flush ran on the connection the batch holds');
}

# An error is the origin's, and never stored.
{
	my $err = pq_parse('', 'SELECT 1 / $1::int FROM nums WHERE id = 1') .
	  pq_bind('', ['0']) . pq_describe('P') . pq_execute() . pq_sync();
	my ($g1, $w1, $h1, $m1) = exchange($err);
	my ($g2, $w2, $h2, $m2) = exchange($err);
	like($g1, qr/22012/, 'division by zero: the origin\'s error');
	is(unpack('H*', $g1), unpack('H*', $w1), 'the error bytes are the origin\'s');
	is($h1 + $h2, 0, 'an error is never a hit');
	is($m2, 1, 'the same request goes to the origin again');
}

# A notice while a fill runs its statement: the client gets it as the origin
# sends it, and the result is not stored (not a plain result).
for my $case (
	[ 'extended', pq_parse('', 'SELECT noisy(id) FROM nums WHERE id = $1') . pq_bind('', ['5']) .
		  pq_describe('P') . pq_execute() . pq_sync() ],
	[ 'simple', pq_query('SELECT noisy(id) FROM nums WHERE id = 6') ])
{
	my ($proto, $bytes) = @$case;
	my ($g1, $w1, $h1, $m1) = exchange($bytes);
	my ($g2, $w2, $h2, $m2) = exchange($bytes);
	like($g1, qr/noisy [56]/, "a notice in a fill ($proto): the client gets it");
	is(unpack('H*', $g1), unpack('H*', $w1), "a notice in a fill ($proto): the origin's bytes");
	is($h1 + $h2, 0, "a notice in a fill ($proto): never a hit");
	is($m1 + $m2, 2, "a notice in a fill ($proto): not stored, the next one fills again");
	is(unpack('H*', $g2), unpack('H*', $w2), "a notice in a fill ($proto): the same answer again");
}

# ---------------------------------------------------------------------------
# Invalidation and read-your-writes in the extended protocol.
{
	my $read = pq_parse('', 'SELECT n FROM nums WHERE id = $1') . pq_bind('', ['30']) .
	  pq_describe('P') . pq_execute() . pq_sync();
	exchange($read) for 1 .. 2;
	$node->safe_psql('app', 'UPDATE nums SET n = 3000 WHERE id = 30');
	my $ok = wait_for(sub { w_exchange($c, $read) =~ /3000/ }, 2.5);
	ok($ok, 'a write on the origin invalidates the extended-protocol entry');
	my $stale = 0;
	for (1 .. 5) { $stale++ unless w_exchange($c, $read) =~ /3000/; }
	is($stale, 0, 'and no stale read afterwards');

	# through the agent: its own next read sees the write, at once
	my $bad = 0;
	for my $v (1 .. 5)
	{
		w_exchange($c, pq_parse('', 'UPDATE nums SET n = $1 WHERE id = 30') .
			  pq_bind('', [4000 + $v]) . pq_execute() . pq_sync());
		$bad++ unless w_exchange($c, $read) =~ /@{[4000 + $v]}/;
	}
	is($bad, 0, 'read-your-writes: each read after the client\'s own write sees it');
}

# ---------------------------------------------------------------------------
# Roles and settings are part of the key: alice and bob read their own schema's t.
{
	my $sa = raw_connect('alice', 'alice-pw', 'app_alice');
	my $sb = raw_connect('bob', 'bob-pw', 'app_bob');
	my $r = pq_parse('', 'SELECT v FROM t WHERE $1::int = 1') . pq_bind('', ['1']) .
	  pq_describe('P') . pq_execute() . pq_sync();
	my ($a1, $b1);
	for (1 .. 3)
	{
		$a1 = w_exchange($sa, $r);
		$b1 = w_exchange($sb, $r);
	}
	like($a1, qr/schema a/, 'alice: her search_path\'s table');
	like($b1, qr/schema b/, 'bob: his, never alice\'s cached rows');
	ok(cache_status('app_alice')->{hits} >= 1 && cache_status('app_bob')->{hits} >= 1,
		'both were served from the cache');
}

# ---------------------------------------------------------------------------
# Hints in SQL comments (agent/cache/cache_hint.h), in both protocols.
{
	my $nc = '/* hyperdrive: no-cache */ SELECT n FROM nums WHERE id = $1';
	forwarded_ok('no-cache hint (extended)',
		pq_parse('', $nc) . pq_bind('', ['3']) . pq_describe('P') . pq_execute() . pq_sync(),
		'bypass:hint');
	forwarded_ok('no-cache hint (simple)',
		pq_query("-- hyperdrive: no-cache\nSELECT n FROM nums WHERE id = 3"), 'bypass:hint');
	forwarded_ok('a hint not understood',
		pq_query('SELECT n FROM nums WHERE id = 3 /* hyperdrive: max-age=soon */'),
		'bypass:hint:invalid');

	# max-age=1: a hit at first, no longer fresh two seconds later (the config says 300 s)
	my $short = pq_query('SELECT n FROM nums WHERE id = 4 /* hyperdrive: max-age=1 */');
	my $long = pq_query('SELECT n FROM nums WHERE id = 4');
	exchange($_) for ($short, $short, $long, $long);
	sleep 2;
	my (undef, undef, $hs) = exchange($short);
	my (undef, undef, $hl) = exchange($long);
	is($hs, 0, 'max-age=1 hint: not a fresh hit after 2 s');
	is($hl, 1, 'the same read without the hint: still a hit (config max_age 300 s)');
}

# ---------------------------------------------------------------------------
# pgbench (libpq) in both extended modes: hits, and no failed transaction.
{
	$node->command_ok([ 'pgbench', '-i', '-q', '-s', '1', '-U', 'app', 'app' ], 'pgbench -i');
	for my $mode ('extended', 'prepared')
	{
		my $before = cache_status();
		my ($out, $err) = ('', '');
		local $ENV{PGPASSWORD} = $PW;
		IPC::Run::run([ 'pgbench', '-n', '-S', '-M', $mode, '-c', '4', '-t', '300',
				'-h', '127.0.0.1', '-p', $aport, '-U', 'app', 'app' ],
			'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
		is($? >> 8, 0, "pgbench -M $mode through the caching config") or diag($err);
		like($out, qr/number of failed transactions: 0/, "pgbench -M $mode: no failed transaction");
		my $after = cache_status();
		ok($after->{hits} - $before->{hits} > 0,
			"pgbench -M $mode: hits (" . ($after->{hits} - $before->{hits}) . ' of 1200)');
	}
}

close $c->{sock};
close $o->{sock};
$agent->signal('TERM');
$agent->finish;
done_testing();
