# The result cache, phase 2 (docs/cache.md): request coalescing and
# stale-while-revalidate, end to end (a real origin, the agent, psql clients).
#
# Needs agent/hyperdrive (make agent) and the extension installed.
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

CacheHarness::setup(
	tag => '071_cache_coalescing_swr',
	node => 'origin71',
	extra_conf => "shared_preload_libraries = 'pg_stat_statements'\nmax_connections = 60\n",
	extra_sql => <<'SQL');
CREATE EXTENSION pg_stat_statements;
SET ROLE app;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
-- slow but cacheable (declared IMMUTABLE; reads nothing, writes nothing)
CREATE FUNCTION hd_slow(n bigint, secs float8 DEFAULT 0.5) RETURNS bigint LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM pg_sleep(secs); RETURN n; END $$;
RESET ROLE;
SQL
hdcli('create swr (max-age 1, swr 5)', 'create', 'swr',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--max-age', '1', '--swr', '5');
ok(start_agent(), 'the agent listens');

ok(stream_ready(),
	'the config\'s change stream connects');
ok($node->safe_psql('app',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hyperdrive_app'") == 1,
	'slot hyperdrive_app exists');
is(cache_status('nocache')->{connected}, undef, 'no stream for a config with caching off');


# origin executions of statements matching $like (pg_stat_statements)
sub calls
{
	my ($like) = @_;
	return $node->safe_psql('app',
		"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '$like'");
}

# clients of role app logged in, holding no origin connection, that sent a
# statement the agent has not answered: waiting for a cache fill (SHOW CLIENTS
# says idle; pg_stat_activity has no backend for them)
sub clients_waiting_for_cache
{
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = 'ops-pw';
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-F', '|', '-h', '127.0.0.1', '-p', $aport,
			'-U', 'ops', '-d', 'hyperdrive', '-c', 'SHOW CLIENTS' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	return scalar grep { my @f = split /\|/; ($f[1] // '') eq 'app' && ($f[3] // '') eq 'idle' }
	  split /\n/, $out;
}

# $n psql clients started together, each running $sql once; their outputs
sub concurrent
{
	my ($n, $sql, %o) = @_;
	my (@h, @out, @err);
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	for my $i (0 .. $n - 1)
	{
		$out[$i] = '';
		$err[$i] = '';
		push @h, IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport,
				'-U', 'app', '-d', $o{dbname} // 'app', '-c', $sql ],
			'<', \undef, '>', \$out[$i], '2>', \$err[$i], IPC::Run::timeout(60));
	}
	$_->finish for @h;
	diag("client stderr: $_") for grep { $_ ne '' } @err;
	chomp @out;
	return @out;
}

ok(stream_ready(),
	'the config\'s change stream connects');
ok(defined warm('SELECT id, name FROM items ORDER BY id'), 'a first entry is cached (warm-up)');

# ---------------------------------------------------------------------------
# Coalescing: 8 concurrent identical cold queries, one origin execution.
{
	my $sql = 'SELECT hd_slow(count(*), 1.5) FROM t';
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	my @r = concurrent(8, $sql);
	my $s1 = cache_status();
	is(scalar(grep { $_ eq '3' } @r), 8, 'coalescing: all 8 clients get the right answer')
	  or diag(explain(\@r));
	is(calls('%hd_slow(count(*), $1) FROM t%'), 1, 'coalescing: the origin ran the query once');
	is($s1->{stored} - $s0->{stored}, 1, 'coalescing: one fill stored');
	is($s1->{coalesced} - $s0->{coalesced}, 7, 'coalescing: SHOW CACHE counts 7 coalesced');
	my $h0 = $s1->{hits};
	is(sel($sql), '3', 'coalescing: then a hit');
	is(cache_status()->{hits}, $h0 + 1, 'coalescing: counted as a hit');
	my $m = '';
	my $mport = 0;
	ok(1, 'coalescing: done');
}

# Analyses are coalesced too: while a lock holds the first analysis of a new
# statement, the other cold clients wait for it instead of each asking the origin.
{
	my $sql = 'SELECT count(*) + 100 FROM t';
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	my $locker = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('app'), '-c',
			'BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT' ],
		'<', \undef, '>', \my $lo, '2>', \my $le, IPC::Run::timeout(60));
	ok(wait_for(sub { $node->safe_psql('app',
		"SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass AND mode = 'AccessExclusiveLock' AND granted") == 1 }, 10),
		'analysis coalescing: a session holds a lock on t');
	my @r = concurrent(6, $sql);
	$locker->finish;
	my $s1 = cache_status();
	is(scalar(grep { $_ eq '103' } @r), 6, 'analysis coalescing: all 6 clients get the right answer')
	  or diag(explain(\@r));
	is(calls('%hyperdrive.analyze_query%'), 1, 'analysis coalescing: the origin analysed the statement once');
	is(($s1->{by}{'analysis-coalesced'} // 0) - ($s0->{by}{'analysis-coalesced'} // 0), 5,
		'analysis coalescing: SHOW CACHE counts 5 clients that waited for it');
}

# The extended protocol coalesces too: raw clients send the same batch at once.
{
	my $batch = pq_parse('', 'SELECT hd_slow(count(*) + $1, 1.5) FROM t', 20) .
	  pq_bind('', ['10']) . pq_describe('P') . pq_execute() . pq_sync();
	my @socks = map { raw_connect('app', $PW, 'app') } 1 .. 5;
	strip_status(w_exchange($_, pq_query('SELECT 1'))) for @socks;
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	w_send($_, $batch) for @socks;
	my @r;
	# (ParameterStatus first if the fill's origin connection was given the
	# client's settings: not part of the statement's replies)
	push @r, strip_status(w_replies($_)) for @socks;
	my $s1 = cache_status();
	is(scalar(grep { $_ eq $r[0] } @r), 5, 'extended coalescing: all 5 clients get the same bytes')
	  or diag(join("\n", map { unpack('H*', $_) } @r));
	like($r[0], qr/\x00\x00\x00\x0213/, 'extended coalescing: which hold the right value');
	is(calls('%hd_slow(count(*) + $1, $2) FROM t%') + calls('%hd_slow(count(*) + $1, 1.5) FROM t%'), 1,
		'extended coalescing: the origin ran the statement once');
	is($s1->{coalesced} - $s0->{coalesced}, 4, 'extended coalescing: 4 coalesced');
	close $_->{sock} for @socks;
}

# a fill that is not stored (oversized): every waiter runs its own query
{
	my $sql = "SELECT hd_slow(count(*)), repeat('x', 70000 + count(*)::int) FROM t";
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	my @r = concurrent(8, $sql);
	my $s1 = cache_status();
	is(scalar(grep { $_ eq '3|' . ('x' x 70003) } @r), 8, 'oversized: all 8 clients get the right answer')
	  or diag(explain([ map { length } @r ]));
	is(calls('%hd_slow(count(*)), repeat%'), 8, 'oversized: each ran its own query on the origin');
	is($s1->{coalesced} - $s0->{coalesced}, 0, 'oversized: nothing coalesced');
	my $fb = ($s1->{by}{'coalesce-fallback:not stored'} // 0) - ($s0->{by}{'coalesce-fallback:not stored'} // 0);
	my $ov = ($s1->{by}{'bypass:oversized'} // 0) - ($s0->{by}{'bypass:oversized'} // 0);
	ok($fb >= 1, "oversized: waiters fell back ($fb)");
	is($fb + $ov, 8, 'oversized: every client either led a fill (not stored) or fell back')
	  or diag(explain($s1->{by}));
}

# a fill that fails (its origin backend is terminated): every waiter runs its own
# query and gets the right answer; a waiter that disconnects is dropped safely
{
	my $sql = 'SELECT hd_slow(count(*) + 1, 2) FROM t';
	my $f0 = cache_status()->{by}{'coalesce-fallback:not stored'} // 0;
	local $ENV{PGPASSWORD} = $PW;
	my @cmd = ('psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
		'-d', 'app', '-c', $sql);
	my ($lout, $lerr) = ('', '');
	my $leader = IPC::Run::start(\@cmd, '<', \undef, '>', \$lout, '2>', \$lerr, IPC::Run::timeout(60));
	# its analysis done, its fill running on the origin
	my $running = "SELECT count(*) FROM pg_stat_activity WHERE query = '$sql' AND state = 'active'";
	ok(wait_for(sub { $node->safe_psql('app', $running) eq '1' }, 20), 'fill failure: the fill runs');
	my $quitter = IPC::Run::start(\@cmd, '<', \undef, '>', \my $qo, '2>', \my $qe, IPC::Run::timeout(60));
	my @h;
	my @out = ('', '', '');
	push @h, IPC::Run::start(\@cmd, '<', \undef, '>', \$out[$_], '2>', \my $e, IPC::Run::timeout(60))
	  for 0 .. 2;
	# the four are logged in and waiting for the fill (no origin connection)
	ok(wait_for(sub { clients_waiting_for_cache() == 4 }, 20), 'fill failure: four clients wait for it');
	$quitter->kill_kill;	# a waiter goes away
	is($node->safe_psql('app', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			. "WHERE query = '$sql' AND state = 'active'"), '1', 'fill failure: the fill\'s backend is terminated');
	$_->finish for @h;
	$leader->finish;
	chomp @out;
	is(scalar(grep { $_ eq '4' } @out), 3, 'fill failure: every waiter still gets the right answer')
	  or diag(explain(\@out));
	my $fb = (cache_status()->{by}{'coalesce-fallback:not stored'} // 0) - $f0;
	ok($fb >= 3, "fill failure: the waiters fell back ($fb)") or diag(explain(cache_status()->{by}));
	like($lerr, qr/terminat|lost|closed/i, 'fill failure: the fill\'s own client gets the error');
	is(sel('SELECT 1 FROM items LIMIT 1'), '1', 'the agent is fine');
}

# A fill overtaken by a write (the race rule: not stored) still answers the
# clients that were waiting before the write's invalidation was applied; the
# clients that came after it wait for that fill too, then one of them leads
# the key's next fill and the other waits for it (one fill at a time).
{
	$node->safe_psql('app', 'SET ROLE app; CREATE TABLE race (id int PRIMARY KEY); '
		  . 'INSERT INTO race VALUES (1), (2), (3)');
	my $sql = 'SELECT hd_slow(sum(id), 2) FROM race';
	ok(stream_ready(), 'race: stream up');
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	local $ENV{PGPASSWORD} = $PW;
	my @cmd = ('psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
		'-d', 'app', '-c', $sql);
	my (@early, @late, @eo, @lo);
	push @early, IPC::Run::start(\@cmd, '<', \undef, '>', \$eo[$_], '2>', \my $e, IPC::Run::timeout(60))
	  for 0 .. 3;
	my $running = "SELECT count(*) FROM pg_stat_activity WHERE query = '$sql' AND state = 'active'";
	ok(wait_for(sub { $node->safe_psql('app', $running) eq '1' }, 20), 'race: the first fill runs');
	ok(wait_for(sub { clients_waiting_for_cache() == 3 }, 20), 'race: three clients wait for it');
	# a write the fill's snapshot cannot see, applied while the fill runs
	$node->safe_psql('app', 'INSERT INTO race VALUES (4)');
	my $lsn = $node->safe_psql('app', 'SELECT pg_current_wal_lsn()');
	ok(wait_for(sub {
				my $a = cache_status()->{applied_lsn} // '';
				$a =~ m{^[0-9A-F]+/[0-9A-F]+$}
				  && $node->safe_psql('app', "SELECT '$a'::pg_lsn >= '$lsn'::pg_lsn") eq 't';
			}, 20), 'race: the write\'s invalidation is applied');
	push @late, IPC::Run::start(\@cmd, "<", \undef, ">", \$lo[$_], "2>", \my $le, IPC::Run::timeout(60))
	  for 0 .. 1;
	$_->finish for @early, @late;
	chomp(@eo, @lo);
	is_deeply(\@eo, [ ('6') x 4 ], 'race: the four early clients get the result of before the write');
	is_deeply(\@lo, [ ('10') x 2 ], 'race: the two late clients get the result with it');
	my $s1 = cache_status();
	is(calls('%hd_slow(sum(id), $1) FROM race%'), 2,
		'race: the origin ran it twice (the overtaken fill, then one new fill)');
	is($s1->{coalesced} - $s0->{coalesced}, 4,
		'race: 3 early waiters answered by the overtaken fill, 1 late one by the new fill');
	is(($s1->{by}{'bypass:race'} // 0) - ($s0->{by}{'bypass:race'} // 0), 1,
		'race: the overtaken fill was not stored');
	is($s1->{stored} - $s0->{stored}, 1, 'race: the new fill was stored');
	is(($s1->{by}{'coalesce-again:raced'} // 0) - ($s0->{by}{'coalesce-again:raced'} // 0), 2,
		'race: the two late clients decided again when the overtaken fill ended');
	is(scalar(grep { /^coalesce-fallback/ && ($s1->{by}{$_} // 0) > ($s0->{by}{$_} // 0) } keys %{ $s1->{by} }),
		0, 'race: no waiter had to run its own query') or diag(explain($s1->{by}));
	is(sel($sql), '10', 'race: then a hit with the write in it');
}

# ---------------------------------------------------------------------------
# Stale-while-revalidate: config swr (max-age 1, swr 5).
{
	my %o = (dbname => 'swr', cfg => 'swr');
	my $q = 'SELECT v FROM t WHERE id = 1';
	ok(stream_ready('swr'),
		'swr: the config\'s stream connects');
	is(warm($q, %o), 'a', 'swr: the entry is cached');
	sleep 1.5;	# expired, within swr
	my $s0 = cache_status('swr');
	is(sel($q, %o), 'a', 'swr: a read at 1.5 s gets the (unchanged) value');
	my $s1 = cache_status('swr');
	is($s1->{stale} - $s0->{stale}, 1, 'swr: served stale (SHOW CACHE counts it)');
	is($s1->{misses} - $s0->{misses}, 0, 'swr: no miss');
	is($s1->{refreshes} - $s0->{refreshes}, 1, 'swr: one background refresh started');
	ok(wait_for(sub { cache_status('swr')->{stored} > $s0->{stored} }, 5),
		'swr: the refresh stored a new entry');
	my $h0 = cache_status('swr')->{hits};
	is(sel($q, %o), 'a', 'swr: the next read');
	is(cache_status('swr')->{hits}, $h0 + 1, 'swr: is a fresh hit');

	# the extended protocol: a stale entry is served, and refreshed in the background
	{
		my $s = raw_connect('app', $PW, 'swr');
		strip_status(w_exchange($s, pq_query('SELECT 1')));
		my $b = pq_parse('', 'SELECT v FROM t WHERE id = $1') . pq_bind('', ['2']) .
		  pq_describe('P') . pq_execute() . pq_sync();
		my $first = strip_status(w_exchange($s, $b));
		ok(wait_for(sub { my $h = cache_status('swr')->{hits}; w_exchange($s, $b); cache_status('swr')->{hits} > $h }, 5),
			'swr extended: the entry is cached');
		sleep 1.5;
		my $e0 = cache_status('swr');
		my $stale = strip_status(w_exchange($s, $b));
		my $e1 = cache_status('swr');
		is(unpack('H*', $stale), unpack('H*', $first), 'swr extended: the stale hit is the same bytes');
		is($e1->{stale} - $e0->{stale}, 1, 'swr extended: served stale');
		is($e1->{refreshes} - $e0->{refreshes}, 1, 'swr extended: one background refresh');
		ok(wait_for(sub { cache_status('swr')->{stored} > $e0->{stored} }, 5),
			'swr extended: the refresh stored a new entry');
		my $h0 = cache_status('swr')->{hits};
		is(unpack('H*', strip_status(w_exchange($s, $b))), unpack('H*', $first), 'swr extended: the next read');
		is(cache_status('swr')->{hits}, $h0 + 1, 'swr extended: is a fresh hit');
		close $s->{sock};
	}

	# concurrent stale reads start one refresh
	sleep 1.5;
	$s0 = cache_status('swr');
	my @r = concurrent(4, $q, dbname => 'swr');
	$s1 = cache_status('swr');
	is(scalar(grep { $_ eq 'a' } @r), 4, 'swr: 4 concurrent readers get the value');
	ok($s1->{refreshes} - $s0->{refreshes} <= 1, 'swr: at most one refresh for them')
	  or diag($s1->{refreshes} - $s0->{refreshes});

	# an invalidated entry is never served, even within swr
	sleep 1.5;	# stale again
	my $inv0 = cache_status('swr')->{invalidated};
	$node->safe_psql('app', "UPDATE t SET v = 'z' WHERE id = 1");
	ok(wait_for(sub { cache_status('swr')->{invalidated} > $inv0 }, 5),
		'swr: the write invalidated the stale entry');
	my $old = 0;
	my $end = time + 2.5;
	while (time < $end)
	{
		$old++ if sel($q, %o) ne 'z';
	}
	is($old, 0, 'swr: after the invalidation, never the old value (stale or not)');

	# read your writes applies to stale entries too
	is(warm($q, %o), 'z', 'swr: cached again');
	sleep 1.5;
	my ($rc, $out) = q_agent(%o, sql => [ "UPDATE t SET v = 'y' WHERE id = 1", $q ]);
	is($out, "y\n", 'swr: a client reads its own write, not the stale entry');
}

$agent->signal('TERM');
$agent->finish;
done_testing();
