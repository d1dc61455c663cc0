# Strict consistency (docs/cache.md, "Consistency"): a config created with
# --consistency=strict serves a hit only once its change stream has applied
# every commit the origin acknowledged before the request arrived; a hit
# waits for that (one freshness probe answers every hit that arrived before
# it was sent), and after max_lag goes to the origin instead.
#
# With max_lag 30 s: pipelined hits cost one probe or a few; a hit waits
# while the walsender of the config's slot is stopped (SIGSTOP) and a write
# was committed on the origin, and answers the new value once it continues;
# a bounded config in the same situation serves the old value (its promise,
# unchanged). Then with max_lag 1 s: a wait that times out goes to the
# origin and is counted, and the hits after it go there at once until the
# stream catches up. Last, the randomized history (t/CacheHistory.pm) on the
# strict config, judged at bound 0 (every write acknowledged before a read
# was sent must be seen), with its walsender stopped for 1.5 s and later
# terminated mid-run; and the same workload on a bounded config, which must
# be caught serving stale values at bound 0 (the checker can fail).
#
# HD_HISTORY_SEED=<n> replays a run's random choices; HD_HISTORY_SECONDS=<n>
# changes the length of each run (default 10).
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use CacheHistory;
use PgWire;

my $SECONDS = $ENV{HD_HISTORY_SECONDS} || 10;
my $seed = length($ENV{HD_HISTORY_SEED} // '') ? $ENV{HD_HISTORY_SEED} : time() % 100000;
diag("seed $seed (HD_HISTORY_SEED=$seed replays the random choices), $SECONDS s per run");

CacheHarness::setup(
	tag => '080_cache_strict',
	node => 'origin80',
	max_lag => '30s',
	extra_conf => "max_connections = 70\n",
	extra_sql => CacheHistory::kv_sql() . "RESET ROLE;\n");
hdcli('create strict (--consistency strict)', 'create', 'strict',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--max-age', '300', '--consistency', 'strict');
ok(start_agent(), 'the agent listens');
for my $cfg (qw(app strict))
{
	ok(stream_ready($cfg),
		"the change stream of $cfg connects");
}

my %strict = (dbname => 'strict', cfg => 'strict');
my @stopped;
END { kill 'CONT', @stopped if @stopped; }
sub stop_stream { my ($cfg) = @_; @stopped = CacheHistory::walsenders($node, $cfg); kill 'STOP', @stopped; return scalar @stopped; }
sub cont_stream { kill 'CONT', @stopped; @stopped = (); return; }
sub delta { my ($a, $b, $k) = @_; return ($b->{$k} // 0) - ($a->{$k} // 0); }
sub by { my ($a, $b, $k) = @_; return ($b->{by}{$k} // 0) - ($a->{by}{$k} // 0); }

# A hit for $sql on PgWire connection $c (its key holds the connection's
# startup parameters: psql's entries are not its), after at most a miss.
sub warm_raw
{
	my ($c, $sql, $cfg) = @_;
	my $r;
	wait_for(sub {
		my $h0 = cache_status($cfg)->{hits};
		$r = w_query($c, $sql)->{rows}[0][0];
		return cache_status($cfg)->{hits} > $h0;
	}, 10) or return undef;
	return $r;
}

sub metric
{
	my ($line) = @_;
	my $res = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$mport/metrics");
	return $res->{content} =~ /^\Q$line\E (\d+)$/m ? $1 : undef;
}

# ---------------------------------------------------------------------------
# Pipelined hits: one probe answers every hit that arrived before it was sent.
{
	my $sql = 'SELECT name FROM items WHERE id = 1';
	my $n = 20;
	my $c = raw_connect('app', $PW, 'strict');
	is(warm_raw($c, $sql, 'strict'), 'apple', 'strict: a hit');
	my $s0 = cache_status('strict');
	w_send($c, pq_query($sql) x $n);
	my @got = map { w_result($c, 30)->{rows}[0][0] // '?' } 1 .. $n;
	my $s1 = cache_status('strict');
	is_deeply(\@got, [ ('apple') x $n ], "strict: $n pipelined hits answer the stored value");
	is(delta($s0, $s1, 'hits'), $n, "strict: all $n are hits") or diag("bypasses: $s1->{bypasses}");
	my ($waits, $probes) = (delta($s0, $s1, 'strict_waits'), delta($s0, $s1, 'strict_probes'));
	ok($waits >= 1 && $waits <= 3, "strict: the first waited, the rest came in with it ($waits waits)");
	ok($probes >= 1 && $probes <= 3, "strict: $n pipelined hits cost one probe or a few ($probes)");
	w_close($c);
	ok(defined metric('hyperdrive_cache_strict_probes_total{config="strict"}')
		  && metric('hyperdrive_cache_strict_waits_total{config="strict"}') >= $waits
		  && metric('hyperdrive_cache_strict_waiting{config="strict"}') == 0,
		'/metrics: strict waits, probes, none waiting now');
}

# ---------------------------------------------------------------------------
# A hit waits while the stream is stopped behind a write, and answers the new value.
{
	my $sql = 'SELECT name FROM items WHERE id = 2';
	my $c = raw_connect('app', $PW, 'strict');
	is(warm_raw($c, $sql, 'strict'), 'pear', 'strict: a hit on row 2');
	ok(stop_stream('strict'), 'the walsender of strict\'s slot is stopped');
	$node->safe_psql('app', "UPDATE items SET name = 'pear-new' WHERE id = 2");
	my $s0 = cache_status('strict');
	w_send($c, pq_query($sql));
	ok(wait_for(sub { metric('hyperdrive_cache_strict_waiting{config="strict"}') == 1 }, 20),
		'strict: the hit waits (the write committed on the origin is not applied yet)');
	cont_stream();
	my $r = w_result($c, 30);
	is($r->{rows}[0][0], 'pear-new', 'strict: once the stream goes on, it answers the new value, not the cached one');
	my $s1 = cache_status('strict');
	is(delta($s0, $s1, 'hits'), 0, 'strict: the stale entry was not served');
	is(delta($s0, $s1, 'strict_waits'), 1, 'strict: counted one wait');
	w_close($c);
}

# ---------------------------------------------------------------------------
# A bounded config in the same situation serves what it has (within max_lag).
{
	my $sql = 'SELECT name FROM items WHERE id = 3';
	is(warm($sql), 'plum', 'bounded: a hit on row 3');
	ok(stop_stream('app'), 'the walsender of app\'s slot is stopped');
	$node->safe_psql('app', "UPDATE items SET name = 'plum-new' WHERE id = 3");
	my $s0 = cache_status('app');
	is(sel($sql), 'plum', 'bounded: the cached value is served at once (at most max_lag behind)');
	my $s1 = cache_status('app');
	is(delta($s0, $s1, 'hits'), 1, 'bounded: a hit');
	is(delta($s0, $s1, 'strict_waits'), 0, 'bounded: nothing waits');
	cont_stream();
	ok(wait_for(sub { sel($sql) eq 'plum-new' }, 20), 'bounded: the new value once the stream goes on');
}

# ---------------------------------------------------------------------------
# max_lag 1 s: a wait that times out goes to the origin.
$agent->signal('TERM');
$agent->finish;
$agent->{settings} =~ s/^max_lag = .*$/max_lag = 1s/m or die 'no max_lag in the settings';
$agent->write_settings;
ok(start_agent(), 'the agent listens again, max_lag 1 s');
ok(stream_ready('strict'),
	'the change stream of strict connects');
{
	my $sql = 'SELECT v FROM other WHERE id = 1';
	is(warm($sql, %strict), 'x', 'strict: a hit on other');
	ok(stop_stream('strict'), 'the walsender of strict\'s slot is stopped');
	$node->safe_psql('app', "UPDATE other SET v = 'y' WHERE id = 1");
	my $s0 = cache_status('strict');
	is(sel($sql, %strict), 'y', 'strict: a hit that waits max_lag gets the origin\'s answer');
	my $s1 = cache_status('strict');
	is(by($s0, $s1, 'bypass:strict-wait-timeout'), 1, 'strict: counted bypass:strict-wait-timeout');
	is(sel($sql, %strict), 'y', 'strict: the next goes to the origin too');
	my $s2 = cache_status('strict');
	is(by($s1, $s2, 'bypass:lagging'), 1, 'strict: at once, as lagging (the stream is behind the timed-out hit)');
	is(by($s1, $s2, 'bypass:strict-wait-timeout') + delta($s1, $s2, 'strict_waits'), 0, 'strict: without waiting');
	cont_stream();
	is(warm($sql, %strict), 'y', 'strict: hits again once the stream goes on');
}

# ---------------------------------------------------------------------------
# The history at bound 0: strict, then the same workload bounded.
my $origin_sock = $node->host . '/.s.PGSQL.' . $node->port;
my %on_origin = (unix => $origin_sock, user => 'app', db => 'app');
sub workers
{
	my ($db) = @_;
	my %through = (port => $aport, user => 'app', password => $PW, db => $db);
	return [ (map { [ "ow$_", 'owriter', \%on_origin ] } 1 .. 3),
		(map { [ "aw$_", 'awriter', \%through ] } 1 .. 2),
		(map { [ "r$_", 'reader', \%through ] } 1 .. 5) ];
}
my $s0 = cache_status('strict');
my $hist = CacheHistory::run_history(node => $node, configs => ['strict'], what => 'strict',
	dir => "$tmp/strict", seed => $seed, seconds => $SECONDS, faults => 1, workers => workers('strict'));
my $s1 = cache_status('strict');
my $res = CacheHistory::verdict('strict', $hist, "$tmp/strict", bound => 0);
is(scalar(@{ $res->{violations} }), 0, 'strict: every read is consistent with the committed history at bound 0');
my ($hits, $waits, $timeouts) = (delta($s0, $s1, 'hits'), delta($s0, $s1, 'strict_waits'),
	by($s0, $s1, 'bypass:strict-wait-timeout'));
diag("strict: hits $hits, waits $waits, probes " . delta($s0, $s1, 'strict_probes')
	  . ", timeouts $timeouts, lagging " . by($s0, $s1, 'bypass:lagging')
	  . ', stream-down ' . by($s0, $s1, 'bypass:stream-down'));
ok($hits >= 300, "strict: the cache served hits during the run ($hits)");
ok($waits >= 1, "strict: hits waited for the stream ($waits)");
ok($timeouts >= 1, "strict: with the walsender stopped past max_lag, waits timed out to the origin ($timeouts)");

my $b0 = cache_status('app');
my $bhist = CacheHistory::run_history(node => $node, configs => ['app'], what => 'bounded',
	dir => "$tmp/bounded", seed => $seed + 1, seconds => $SECONDS, faults => 1, workers => workers('app'));
my $b1 = cache_status('app');
my $bres = CacheHistory::verdict('bounded', $bhist, "$tmp/bounded", bound => 0, show => 5, expected => 1);
ok(delta($b0, $b1, 'hits') >= 300, 'bounded: the cache served hits during the run (' . delta($b0, $b1, 'hits') . ')');
my @stale = grep { /, stale: / } @{ $bres->{violations} };
ok(scalar(@stale) >= 1, 'bounded at bound 0: the checker catches stale reads (' . scalar(@stale) . ')');

$agent->signal('TERM');
$agent->finish;
done_testing();
