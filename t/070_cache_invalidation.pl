# The result cache, phase 1, end to end (docs/cache.md): a real origin
# (wal_level = logical, the extension), the agent with a config that caches,
# its change stream, and clients through the agent.
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

CacheHarness::setup(tag => '070_cache_invalidation', node => 'origin');
ok(start_agent(), 'the agent listens');

ok(stream_ready(),
	'the config\'s change stream connects');
ok($node->safe_psql('app',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hyperdrive_app'") == 1,
	'slot hyperdrive_app exists');
is(cache_status('nocache')->{connected}, undef, 'no stream for a config with caching off');

# ---------------------------------------------------------------------------
# Hits are identical to misses.
my $q1 = 'SELECT id, name FROM items ORDER BY id';
my $s0 = cache_status();
my $miss = sel($q1);
my $s1 = cache_status();
is($s1->{misses}, $s0->{misses} + 1, 'first read: a miss');
is($s1->{stored}, $s0->{stored} + 1, 'and stored');
my $hit = sel($q1);
my $s2 = cache_status();
is($s2->{hits}, $s1->{hits} + 1, 'second read: a hit');
is($hit, $miss, 'the hit returns what the miss returned (psql)');
is($hit, "1|apple\n2|pear\n3|plum", 'which is the origin\'s answer');

sub raw_query { my ($s, $sql) = @_; return w_exchange($s, pq_query($sql)); }

{
	my $rs = raw_connect('app', $PW, 'app');
	my $rq = 'SELECT name, id * 2 AS twice FROM items WHERE id <= 2 ORDER BY id';
	my $h0 = cache_status()->{hits};
	# ParameterStatus from the agent's settings sync precedes the first reply: not part of it
	my $b1 = raw_query($rs, $rq);
	while (substr($b1, 0, 1) eq 'S') { $b1 = substr($b1, 1 + unpack('N', substr($b1, 1, 4))); }
	my $b2 = raw_query($rs, $rq);
	my $b3 = raw_query($rs, $rq);
	is(cache_status()->{hits}, $h0 + 2, 'raw client: a miss, then two hits');
	ok(length($b1) > 20, 'raw client: got a result');
	is(unpack('H*', $b2), unpack('H*', $b1), 'raw client: the hit is byte-identical to the miss');
	is(unpack('H*', $b3), unpack('H*', $b1), 'and so is the next one');
	my $rsn = raw_connect('app', $PW, 'nocache');
	my $b4 = raw_query($rsn, $rq);
	while (substr($b4, 0, 1) eq 'S') { $b4 = substr($b4, 1 + unpack('N', substr($b4, 1, 4))); }
	is(unpack('H*', $b4), unpack('H*', $b1), 'and identical to the origin\'s answer (nocache config)');
	close $rs->{sock};
	close $rsn->{sock};
}

# ---------------------------------------------------------------------------
# Writes made directly on the origin invalidate.
sub invalidates
{
	my ($name, $read, $write, $expect) = @_;
	ok(defined warm($read), "$name: the read is cached") or return;
	my $inv0 = cache_status()->{invalidated};
	$node->safe_psql('app', $write);
	my $got;
	my $ok = wait_for(sub { $got = sel($read); $got eq $expect }, 2.5);
	ok($ok, "$name: the next read shows the change within the bound")
	  or diag("got <$got>, expected <$expect>");
	ok(cache_status()->{invalidated} > $inv0, "$name: SHOW CACHE counts the invalidation");
	# once applied, never the old value again
	my $stale = 0;
	for (1 .. 5) { $stale++ if sel($read) ne $expect; }
	is($stale, 0, "$name: no stale read after the invalidation");
}

invalidates('UPDATE on the origin', 'SELECT name FROM items WHERE id = 1',
	"UPDATE items SET name = 'apricot' WHERE id = 1", 'apricot');
invalidates('a write inside a function', 'SELECT name FROM items WHERE id = 3',
	'SET ROLE app; SELECT touch_items()', 'plum+');
invalidates('a trigger\'s write', 'SELECT count(*) FROM log',
	"UPDATE audited SET v = 'b'", '1');
invalidates('FK cascade', 'SELECT count(*) FROM child',
	'DELETE FROM parent WHERE id = 2', '1');
invalidates('TRUNCATE', 'SELECT count(*) FROM other', 'TRUNCATE other', '0');
invalidates('partition ATTACH', 'SELECT count(*) FROM meas',
	'ALTER TABLE meas ATTACH PARTITION meas2 FOR VALUES FROM (10) TO (20)', '2');
invalidates('partition DETACH', 'SELECT count(*) FROM meas',
	'ALTER TABLE meas DETACH PARTITION meas2', '1');
invalidates('CREATE OR REPLACE VIEW', 'SELECT count(*) FROM items_v',
	'CREATE OR REPLACE VIEW items_v AS SELECT id, name FROM items WHERE id < 4', '3');
invalidates('REFRESH MATERIALIZED VIEW', 'SELECT n FROM items_mv',
	"INSERT INTO items VALUES (4, 'fig'); REFRESH MATERIALIZED VIEW items_mv", '4');
invalidates('ALTER TABLE', 'SELECT * FROM other',
	"ALTER TABLE other ADD COLUMN extra int DEFAULT 7; INSERT INTO other VALUES (5, 'y')", '5|y|7');
{
	my $read = 'SELECT secret FROM public.privs';
	ok(defined warm($read, as('alice')), 'REVOKE: alice\'s read is cached');
	$node->safe_psql('app', 'REVOKE SELECT ON privs FROM alice');
	my ($rc, $out, $err);
	my $ok = wait_for(sub {
		($rc, $out, $err) = q_agent(as('alice'), sql => [$read]);
		$err =~ /permission denied/;
	}, 2.5);
	ok($ok, 'REVOKE: alice gets permission denied within the bound');
	$node->safe_psql('app', 'GRANT SELECT ON privs TO alice');
	ok(wait_for(sub { sel($read, as('alice')) eq 's' }, 2.5),
		'GRANT: alice reads again');
}

# an unrelated write leaves the entry
{
	my $read = 'SELECT name FROM items WHERE id = 2';
	warm($read);
	my $h0 = cache_status()->{hits};
	$node->safe_psql('app', "INSERT INTO log(what) VALUES ('unrelated')");
	sleep 0.5;
	is(sel($read), 'pear', 'unrelated write: same answer');
	is(cache_status()->{hits}, $h0 + 1, 'unrelated write: still a hit');
}

# ---------------------------------------------------------------------------
# What is never cached, and why.
sub bypassed
{
	my ($name, $sqls, $reason, %o) = @_;
	my $b0 = cache_status()->{by}{$reason} // 0;
	my $h0 = cache_status()->{hits};
	my ($rc, $out, $err) = q_agent(%o, sql => $sqls);
	($rc, $out, $err) = q_agent(%o, sql => $sqls);
	is(cache_status()->{hits}, $h0, "$name: never a hit");
	ok((cache_status()->{by}{$reason} // 0) >= $b0 + 1, "$name: bypassed as $reason")
	  or diag(explain(cache_status()->{by}));
}
bypassed('now()', ['SELECT now() > now() - interval \'1 day\''], 'bypass:uncacheable:stable function');
bypassed('random()', ['SELECT random() < 2'], 'bypass:uncacheable:volatile function');
bypassed('FOR UPDATE', ['SELECT * FROM items WHERE id = 2 FOR UPDATE'], 'bypass:uncacheable:locking clause');
bypassed('pg_class', ['SELECT count(*) > 0 FROM pg_class'], 'bypass:uncacheable:system catalog');
bypassed('unlogged table', ['SELECT count(*) FROM unl'], 'bypass:uncacheable:unlogged table');
bypassed('RLS table', ['SELECT count(*) FROM secure'], 'bypass:uncacheable:row level security');
bypassed('temp table', ['CREATE TEMP TABLE tt (a int)', 'SELECT count(*) FROM tt'], 'bypass:pinned:temporary object');
bypassed('multi-statement', ['SELECT 1 FROM items LIMIT 1; SELECT 2 FROM items LIMIT 1'],
	'bypass:uncacheable:multiple statements');
bypassed('inside BEGIN', ['BEGIN', 'SELECT name FROM items WHERE id = 2', 'COMMIT'], 'bypass:transaction');

# roles and search_path: the same text, different answers
{
	my $ra = warm('SELECT v FROM t', as('alice'));
	my $rb = warm('SELECT v FROM t', as('bob'));
	is($ra, 'schema a', 'alice reads sa.t (cached)');
	is($rb, 'schema b', 'bob reads sb.t (cached), never alice\'s rows');
	is(sel('SELECT v FROM t', as('bob')), 'schema b', 'and again');
	my ($rc, $out) = q_agent(sql => ['SET search_path = sa', 'SELECT v FROM t', 'SET search_path = sb', 'SELECT v FROM t']);
	is($out, "schema a\nschema b\n", 'one client, two search_paths: two entries');
}

# ---------------------------------------------------------------------------
# Read your writes through the agent.
{
	warm('SELECT name FROM items WHERE id = 2');
	my $bad = 0;
	for my $i (1 .. 10)
	{
		my ($rc, $out, $err) = q_agent(sql => [ "UPDATE items SET name = 'pear$i' WHERE id = 2",
				'SELECT name FROM items WHERE id = 2' ]);
		$bad++ unless $out eq "pear$i\n";
	}
	is($bad, 0, 'read-your-writes: a client reads its own update at once (10 rounds)');
	diag('read-your-writes bypasses so far: ' . (cache_status()->{by}{'bypass:read-your-writes'} // 0));
}

# the cost of read-your-writes for write transactions, and hit vs miss latency
sub timed
{
	my ($db, $sql, $n) = @_;
	my $file = "$tmp/timed.sql";
	open my $fh, '>', $file or die $!;
	print $fh "$sql;\n" for 1 .. $n;
	close $fh;
	local $ENV{PGPASSWORD} = $PW;
	my $t0 = time;
	IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
			'-d', $db, '-f', $file ], '<', \undef, '>', \my $o, '2>', \my $e, IPC::Run::timeout(120));
	return (time - $t0) / $n * 1000;
}
{
	my $n = 300;
	my $w_cache = timed('app', "UPDATE log SET what = 'w' WHERE id = 1", $n);
	my $w_plain = timed('nocache', "UPDATE log SET what = 'w' WHERE id = 1", $n);
	diag(sprintf('write (autocommit UPDATE): %.3f ms with caching (read-your-writes query), %.3f ms without: +%.3f ms',
			$w_cache, $w_plain, $w_cache - $w_plain));
	sleep 1.5;
	warm('SELECT id, name FROM items ORDER BY id');
	my $hit_ms = timed('app', 'SELECT id, name FROM items ORDER BY id', $n);
	my $plain_ms = timed('nocache', 'SELECT id, name FROM items ORDER BY id', $n);
	diag(sprintf('read: %.3f ms per hit, %.3f ms through the agent without cache', $hit_ms, $plain_ms));
	ok(1, 'measured');
}

# ---------------------------------------------------------------------------
# The race: a commit that is in the WAL (and streamed) but not yet visible.
{
	my $read = 'SELECT name FROM items WHERE id = 1';
	is(warm($read), 'apricot', 'race: the entry is cached');
	$node->append_conf('postgresql.conf', "synchronous_standby_names = 'nobody'\n");
	$node->reload;
	my $inv0 = cache_status()->{invalidated};
	my ($wout, $werr) = ('', '');
	my $writer = IPC::Run::start([ 'psql', '-X', '-h', $node->host, '-p', $oport, '-d', 'app', '-c',
			"SET synchronous_commit = on; UPDATE items SET name = 'raced' WHERE id = 1" ],
		'<', \undef, '>', \$wout, '2>', \$werr, IPC::Run::timeout(60));
	ok(wait_for(sub { cache_status()->{invalidated} > $inv0 }, 5),
		'race: the writer\'s commit was streamed and applied');
	is($node->safe_psql('app', "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
		'1', 'race: the writer still waits (its commit is not visible)');
	my $r0 = cache_status()->{by}{'bypass:race'} // 0;
	is(sel($read), 'apricot', 'race: a read now sees the old value (as the origin does)');
	ok((cache_status()->{by}{'bypass:race'} // 0) > $r0, 'race: the fill was not stored (race)');
	my $h0 = cache_status()->{hits};
	is(sel($read), 'apricot', 'race: again the old value');
	is(cache_status()->{hits}, $h0, 'race: and no hit');
	$node->adjust_conf('postgresql.conf', 'synchronous_standby_names', "''");
	$node->reload;
	$writer->finish;
	ok(wait_for(sub { sel($read) eq 'raced' }, 3), 'race: once visible, the new value');
	my $stale = 0;
	for (1 .. 10) { $stale++ if sel($read) ne 'raced'; }
	is($stale, 0, 'race: never the old value after that');
}

# ---------------------------------------------------------------------------
# The stream cut: reads bypass, then hits come back.
{
	my $read = 'SELECT name FROM items WHERE id = 1';
	warm($read);
	# the stream cannot come back until REPLICATION is given back (however
	# fast the agent reconnects)
	$node->safe_psql('app', 'ALTER ROLE app NOREPLICATION');
	$node->safe_psql('app',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'hyperdrive stream'");
	my $b0 = (cache_status()->{by}{'bypass:stream-down'} // 0) + (cache_status()->{by}{'bypass:lagging'} // 0);
	ok(wait_for(sub { sel($read); my $s = cache_status();
		($s->{by}{'bypass:stream-down'} // 0) + ($s->{by}{'bypass:lagging'} // 0) > $b0 }, 10),
		'stream cut: reads bypass (stream down / lagging)');
	my $h0 = cache_status()->{hits};
	is(sel($read), $node->safe_psql('app', $read), 'stream cut: the read is answered by the origin');
	is(cache_status()->{hits}, $h0, 'stream cut: and not from the cache');
	$node->safe_psql('app', 'ALTER ROLE app REPLICATION');
	ok(defined warm($read), 'stream cut: hits resume after the reconnect');
}

# ---------------------------------------------------------------------------
# Freshness comes from the probe (docs/cache.md): with the probe's backend
# stopped, the stream still streams and keepalives still arrive, but nothing
# proves it has applied what the origin acknowledged lately: past max_lag
# reads bypass as lagging; once the probe answers again, hits resume.
{
	my $read = 'SELECT name FROM items WHERE id = 1';
	ok(defined warm($read), 'probe: a hit first');
	my $pid = '';
	ok(wait_for(sub {
				$pid = $node->safe_psql('app', "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
					  . "WHERE application_name = 'hyperdrive freshness probe' AND usename = 'app'");
				$pid =~ /^\d+$/;
			}, 10), 'probe: config app has one freshness probe connection');
	kill 'STOP', $pid;
	my $b0 = cache_status()->{by}{'bypass:lagging'} // 0;
	my $h0 = cache_status()->{hits};
	ok(wait_for(sub { sel($read); (cache_status()->{by}{'bypass:lagging'} // 0) > $b0 }, 10),
		'probe: with the probe stopped, reads bypass as lagging');
	my $st = cache_status();
	ok($st->{lag} > 1, "probe: SHOW CACHE lag_seconds is past max_lag ($st->{lag})");
	is($st->{connected}, 'yes', 'probe: while the stream itself is connected');
	is(sel($read), $node->safe_psql('app', $read), 'probe: the read is answered by the origin');
	kill 'CONT', $pid;
	ok(defined warm($read), 'probe: hits resume once it answers');
	ok(cache_status()->{lag} < 1, 'probe: lag_seconds is back under max_lag');
}

# ---------------------------------------------------------------------------
# /metrics: the cache's series are served (they come after the pools'), and
# hyperdrive_cache_invalidation_seconds times each change record from its
# commit on the origin to its invalidation applied.
{
	require HTTP::Tiny;
	my $scrape = sub {
		my $res = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$mport/metrics");
		return $res->{success} ? $res->{content} : '';
	};
	# $name: the histogram (default hyperdrive_cache_invalidation_seconds)
	my $inval = sub {
		my ($text, $name) = @_;
		$name //= 'hyperdrive_cache_invalidation_seconds';
		my %h = (buckets => []);
		for my $line (split /\n/, $text)
		{
			if ($line =~ /^${name}_bucket\{config="app",le="([^"]+)"\} (\d+)$/)
			{
				push @{ $h{buckets} }, [ $1, $2 ];
			}
			$h{sum} = $1 if $line =~ /^${name}_sum\{config="app"\} (\S+)$/;
			$h{count} = $1 if $line =~ /^${name}_count\{config="app"\} (\d+)$/;
		}
		return \%h;
	};
	my $sent_name = 'hyperdrive_cache_invalidation_sent_seconds';
	my $text = $scrape->();
	like($text, qr/^hyperdrive_cache_statements_total\{config="app",status="hit"\} [1-9]\d*$/m,
		'/metrics: the cache\'s statement counts are in the answer');
	my $m0 = $inval->($text);
	ok(defined $m0->{count}, '/metrics: hyperdrive_cache_invalidation_seconds for config app');
	my $n = 5;
	$node->safe_psql('app', 'CREATE TABLE timed (id int PRIMARY KEY)');
	$m0 = $inval->($scrape->()) if wait_for(sub { $inval->($scrape->())->{count} > $m0->{count} }, 10);
	my $text0 = $scrape->();
	$m0 = $inval->($text0);
	my $s0 = $inval->($text0, $sent_name);
	ok(defined $s0->{count}, "/metrics: $sent_name for config app");
	my $t0 = time;
	$node->safe_psql('app', "INSERT INTO timed VALUES ($_)") for 1 .. $n;
	my ($m1, $s1);
	ok(wait_for(sub { my $t = $scrape->(); $m1 = $inval->($t); $s1 = $inval->($t, $sent_name);
		($m1->{count} // 0) >= $m0->{count} + $n }, 10),
		"/metrics: $n commits on the origin are $n more records timed");
	is($s1->{count} - $s0->{count}, $m1->{count} - $m0->{count},
		'and as many timed from the walsender\'s send time');
	# (each record is sent after its commit; the agent reads its clock twice: 1 ms of slack)
	ok($s1->{sum} - $s0->{sum} <= $m1->{sum} - $m0->{sum} + 0.001,
		'the send-time figures are not above the commit-time ones');
	my $elapsed = time - $t0;
	my @b = @{ $m1->{buckets} };
	is($b[-1][0], '+Inf', 'invalidation histogram: the last bucket is +Inf');
	is($b[-1][1], $m1->{count}, 'invalidation histogram: +Inf counts every record');
	ok(!grep({ $b[$_][1] < $b[ $_ - 1 ][1] } 1 .. $#b), 'invalidation histogram: cumulative buckets');
	my $dn = $m1->{count} - $m0->{count};
	my $dsum = $m1->{sum} - $m0->{sum};
	# each record was applied after its commit and before we saw it counted
	ok($dsum > 0 && $dsum <= $dn * $elapsed,
		"invalidation histogram: the new records' times are plausible ($dsum s for $dn records within $elapsed s)");
}

# ---------------------------------------------------------------------------
# kill -9 and restart: the entries survive, but no hit before the stream
# caught up, and writes made while the agent was down invalidate first.
{
	my $read = 'SELECT name FROM items WHERE id = 3';
	my $warm = warm($read);
	ok(defined $warm, 'restart: the entry is cached');
	sleep 1.5;	# its position synced and confirmed
	$agent->signal('KILL');
	$agent->finish;
	$node->safe_psql('app', "UPDATE items SET name = 'while-down' WHERE id = 3");
	ok(start_agent(), 'restart: the agent listens again');
	my $stale = 0;
	my $t_end = time + 4;
	while (time < $t_end)
	{
		my $got = sel($read);
		$stale++ if $got ne 'while-down';
	}
	is($stale, 0, 'restart: never the value from before the write made while down');
	ok(cache_status()->{entries} >= 1, 'restart: other entries stayed (warm)');
	my $other = 'SELECT id, name FROM items ORDER BY id';
	my $h0 = cache_status()->{hits};
	ok(wait_for(sub { sel('SELECT id, name FROM items ORDER BY id'); cache_status()->{hits} > $h0 }, 5),
		'restart: hits are served again once caught up');
}

$agent->signal('TERM');
$agent->finish;
done_testing();
