# The result cache with several clients on ONE origin connection
# (origin_connection_limit 1), against what drivers and adversaries send:
#  - a statement described before a schema change and run after it through a
#    cache fill: 0A000, as PostgreSQL answers, never rows of the new shape
#    under the old description, and nothing stored;
#  - a client that changes its session with server-side code (a DO block
#    calling set_config): its results are its own, it keeps its connection,
#    and no other client's key gets an entry read under its search_path.
use strict;
use warnings;

use File::Basename qw(dirname);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use PgWire;

CacheHarness::setup(tag => '074_cache_isolation', node => 'origin', extra_sql => <<'SQL');
SET ROLE app;
CREATE TABLE shapes (id int PRIMARY KEY, b text);
INSERT INTO shapes VALUES (1, 'hello');
CREATE TABLE shapes2 (id int PRIMARY KEY, b text);
INSERT INTO shapes2 VALUES (1, '1');
CREATE SCHEMA evil;
CREATE TABLE evil.items (id int PRIMARY KEY, name text);
INSERT INTO evil.items VALUES (1, 'evil item');
RESET ROLE;
SQL
app_config('one', 'limit 1, caching on', '--origin-connection-limit', '1');
ok(start_agent(), 'the agent listens');
ok(stream_ready('one'),
	'the config\'s change stream connects');

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'one');

sub ex { my ($c, $bytes) = @_; w_send($c, $bytes); return w_result($c); }

sub val
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql);
	return 'ERROR ' . $r->{errors}[0]{C} if @{ $r->{errors} };
	return $r->{timeout} ? 'TIMEOUT' : $r->{rows}[0][0];
}

# ---------------------------------------------------------------------------
# A statement described before a change, filled after it.
{
	my $x = w_login();
	my $r = ex($x, pq_parse('s1', 'SELECT * FROM shapes WHERE id = $1', 23)
		  . pq_describe('S', 's1') . pq_sync());
	is_deeply($r->{fields}, [ [ 'id', 'b' ] ], 'X prepares s1 and is shown (id, b)');
	# until the stream has caught up, runs are forwarded; then a fill, then hits
	ok(wait_for(sub {
		my $h = cache_status('one')->{hits};
		$r = ex($x, pq_bind('s1', [1]) . pq_execute() . pq_sync());
		return cache_status('one')->{hits} > $h;
	}, 15), 'X runs it until it is a hit');
	is_deeply($r->{rows}, [ [ 1, 'hello' ] ], '... with its row');

	my $inval = cache_status('one')->{invalidated};
	$node->safe_psql('app', 'ALTER TABLE shapes ADD COLUMN c int DEFAULT 7');
	ok(wait_for(sub { cache_status('one')->{invalidated} > $inval }, 10),
		'the stream applied the ALTER TABLE (the entry is gone)');
	my $stored = cache_status('one')->{stored};
	$r = ex($x, pq_bind('s1', [1]) . pq_execute() . pq_sync());
	is($r->{errors}[0]{C} // 'no error', '0A000',
		's1 run after the change (a fill): 0A000 cached plan must not change result type');
	is($r->{errors}[0]{R} // '', 'RevalidateCachedQuery', '... with the routine drivers look for');
	is(scalar @{ $r->{rows} }, 0, '... never a row of the new shape under the old description');
	is(cache_status('one')->{stored}, $stored, '... and nothing stored');
	$r = ex($x, pq_close('S', 's1') . pq_parse('s1', 'SELECT * FROM shapes WHERE id = $1', 23)
		  . pq_describe('S', 's1') . pq_bind('s1', [1]) . pq_execute() . pq_sync());
	is_deeply([ $r->{fields}, $r->{rows} ], [ [ [ 'id', 'b', 'c' ] ], [ [ 1, 'hello', 7 ] ] ],
		'X prepares it again (as Postgres.js does after 0A000): the new shape');
	w_close($x);
}

# ---------------------------------------------------------------------------
# The same when the client's Parse and Describe were themselves answered by
# the cache (a fill, then hits: Postgres.js' "Recreate prepared statements on
# RevalidateCachedQuery error"): the description it was shown is known too.
{
	my $y = w_login();
	my $batch = pq_parse('p2', 'SELECT b FROM shapes2 WHERE id = $1', 23) . pq_describe('S', 'p2')
	  . pq_bind('p2', [1]) . pq_execute() . pq_sync();
	my $r;
	ok(wait_for(sub {
		my $h = cache_status('one')->{hits};
		$r = ex($y, $batch);
		return cache_status('one')->{hits} > $h;
	}, 15), 'Parse+Describe+Bind+Execute of p2, until it is a hit');
	is_deeply([ $r->{fields}, $r->{rows} ], [ [ ['b'] ], [ ['1'] ] ], '... shown b (text): "1"');
	my $inval = cache_status('one')->{invalidated};
	$node->safe_psql('app', 'ALTER TABLE shapes2 ALTER COLUMN b TYPE int USING b::int');
	ok(wait_for(sub { cache_status('one')->{invalidated} > $inval }, 10),
		'the stream applied the ALTER TABLE');
	$r = ex($y, pq_bind('p2', [1]) . pq_execute() . pq_sync());
	is($r->{errors}[0]{C} // 'no error', '0A000',
		'p2 bound again (a fill): 0A000, not an int under the text description');
	is(scalar @{ $r->{rows} }, 0, '... no row');
	w_close($y);
}

# ---------------------------------------------------------------------------
# A client that changes its search_path with server-side code.
{
	my $q = 'SELECT name FROM items WHERE id = 1';
	my $a = w_login();
	my $b = w_login();
	my $r = w_query($a, q{DO $$BEGIN PERFORM set_config('search_path', 'evil, public', false); END$$});
	ok(!@{ $r->{errors} }, 'A changes its search_path in a DO block');
	is(val($a, $q), 'evil item', 'A reads evil.items, as it would directly');
	is(val($a, $q), 'evil item', '... every time (never a cached public result)');
	w_send($b, fmsg('Q', "$q\0"));	# B waits for the only origin connection
	is(val($a, 'SHOW search_path'), 'evil, public', 'A keeps its connection and its state');
	w_close($a);
	$r = w_result($b);
	is($r->{rows}[0][0] // 'error', 'apple', 'B (same origin connection, after A) reads public.items');
	my $c = w_login();
	my $hits = cache_status('one')->{hits};
	is(val($c, $q), 'apple', 'C reads public.items too');
	is(val($c, $q), 'apple', '... from the cache, never an entry read under A\'s search_path');
	ok(cache_status('one')->{hits} > $hits, '... (a hit)');
	like(slurp_file($log), qr/session state changed on the origin by server-side code \(search_path\)/,
		'the agent logged why A kept its connection');
	w_close($_) for $b, $c;
}

# ---------------------------------------------------------------------------
# A client that never reads, asking again and again for a cached result: the
# agent stops reading it once its output is full, as for forwarded results.
{
	my $q = "SELECT repeat(name, 12000) AS big FROM items WHERE id = 1";	# 60 kB
	my $c = w_login();
	is(length(val($c, $q)), 60000, 'a 60 kB result (a fill)');
	my $hits = cache_status('one')->{hits};
	is(length(val($c, $q)), 60000, '... then a hit');
	ok(cache_status('one')->{hits} > $hits, '... (counted)');
	my $pid = $agent->pid;
	my $rss = sub {
		open my $fh, '<', "/proc/$pid/status" or return -1;
		while (<$fh>) { return $1 / 1024 if /^VmRSS:\s+(\d+)\s+kB/; }
		return -1;
	};
	my $base = $rss->();
	my $n = 2000;
	w_send($c, fmsg('Q', "$q\0") x $n);	# 120 MB of replies, not read
	sleep 2;
	my $grew = $rss->() - $base;
	ok($grew < 40, sprintf('%d pipelined hits of 60 kB, never read: the agent grew by %.1f MB', $n, $grew));
	my $ok = 0;
	for (1 .. $n)
	{
		my $r = w_result($c, 30);
		last if $r->{eof} || $r->{timeout};
		$ok++ if length($r->{rows}[0][0] // '') == 60000;
	}
	is($ok, $n, 'once the client reads, it gets every answer');
	w_close($c);
}

done_testing();
