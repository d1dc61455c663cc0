# Prepared statements under transaction pooling, with several clients on ONE
# origin connection (origin_connection_limit 1), as raw wire-protocol clients
# interleave them:
#  - the unnamed statement: a Bind always runs the client's own unnamed
#    statement (re-parsed on the connection if another client's replaced it),
#    or fails as PostgreSQL does when the client has none; never another's;
#  - statements and schema changes: a fresh Parse after DDL means the new
#    schema; a statement described before a change and run after it on a
#    connection that lacks it fails with 0A000 as PostgreSQL does, never
#    returns rows of the new shape; drivers' re-prepare recovers;
#  - DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL, by simple Query or by the
#    extended protocol (psycopg 3), act on the client's own statement names
#    and do not pin it.
use strict;
use warnings;

use File::Basename qw(dirname);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'app-Secret-21';

my $node = start_origin('origin');
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN PASSWORD '$PW';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', <<'SQL');
SET ROLE app;
CREATE TABLE t (id int PRIMARY KEY, b text);
INSERT INTO t VALUES (1, 'hello');
CREATE TABLE t2 (id int PRIMARY KEY, b text);
INSERT INTO t2 VALUES (1, 'hello');
CREATE TABLE t3 (id int PRIMARY KEY, b text);
INSERT INTO t3 VALUES (1, 'hello');
SQL

my $agent = hd_agent(name => '021_prepared_statements',
	settings => "log_level = debug\nquery_wait_timeout = 10\n",
	configs => [ [ 'create one (limit 1)', 'one',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:" . $node->port . '/app',
		'--sslmode', 'disable', '--origin-connection-limit', '1', '--caching-disabled' ] ],
	bail => 1);
my ($log, $aport) = @$agent{qw(log port)};

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'one');

# Sends $bytes, reads up to ReadyForQuery.
sub ex { my ($c, $bytes) = @_; w_send($c, $bytes); return w_result($c); }

sub no_errors
{
	my ($r, $name) = @_;
	return ok(!@{ $r->{errors} } && !$r->{eof} && !$r->{timeout}, $name)
	  || diag(explain($r->{errors}), $r->{eof} ? ' EOF' : '', $r->{timeout} ? ' TIMEOUT' : '');
}

sub sqlstate_is
{
	my ($r, $code, $name) = @_;
	return is($r->{errors}[0]{C} // ($r->{eof} ? 'EOF' : 'no error'), $code, $name)
	  || diag(explain($r));
}

# Whether another client can run a statement now (a pinned client would
# hold the only origin connection).
sub not_pinned
{
	my ($name) = @_;
	my $d = w_login();
	my $r = w_query($d, "SELECT 'free'", 8);
	w_close($d);
	return is($r->{rows}[0][0] // 'blocked', 'free', "$name: the client is not pinned");
}

# The agent's origin backends (the test's own connections use the socket).
sub kill_agent_backends
{
	$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE usename = 'app' AND client_addr IS NOT NULL});
	wait_for(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'app' AND client_addr IS NOT NULL}) eq '0' });
	return;
}

# ---------------------------------------------------------------------------
# The unnamed statement.
{
	my $a = w_login();
	my $b = w_login();
	ok($a->{ready} && $b->{ready}, 'two clients logged in');

	no_errors(ex($b, pq_parse('', "SELECT 'b'::text AS who") . pq_describe('S') . pq_sync()),
		'B parses its unnamed statement (Parse, Describe, Sync)');
	my $r = ex($a, pq_parse('', "SELECT 'a'::text AS who") . pq_bind('') . pq_execute() . pq_sync());
	is($r->{rows}[0][0], 'a', 'A parses and runs its own on the same origin connection');
	$r = ex($b, pq_bind('') . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', 'b', "B's Bind in a later batch runs B's statement, not A's");

	ex($a, fmsg('Q', "SELECT 1\0"));
	$r = ex($b, pq_bind('') . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', 'b', "after A's simple Query (which drops the origin's unnamed statement) too");

	my $c = w_login();
	no_errors(ex($a, pq_parse('', "SELECT 'a2'::text") . pq_describe('S') . pq_sync()),
		'A parses another unnamed statement');
	$r = ex($c, pq_bind('') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', 'a client that never parsed the unnamed statement: 26000, not A\'s rows');
	is(scalar @{ $r->{rows} }, 0, '... and no rows');

	$r = ex($c, pq_parse('', 'SELEC 1') . pq_sync());
	sqlstate_is($r, '42601', 'C: a Parse of the unnamed statement that fails');
	no_errors(ex($a, pq_parse('', "SELECT 'a3'::text") . pq_describe('S') . pq_sync()),
		'A parses again');
	$r = ex($c, pq_bind('') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', 'C after its failed Parse: 26000, not A\'s statement');

	# the same client's own statement after its simple Query is gone, as on PostgreSQL
	no_errors(ex($b, pq_parse('', "SELECT 'b2'::text") . pq_sync()), 'B parses');
	ex($b, fmsg('Q', "SELECT 1\0"));
	$r = ex($b, pq_bind('') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', 'B\'s own simple Query dropped its unnamed statement (26000)');

	# pgx v4 without a statement cache: Parse+Describe+Sync, then Bind+Execute+Sync
	my @clients = ($a, $b, $c);
	my ($wrong, $total) = (0, 0);
	for my $round (1 .. 60)
	{
		for my $i (0 .. $#clients)
		{
			ex($clients[$i], pq_parse('', "SELECT 'c$i r$round'::text, \$1::int") . pq_describe('S') . pq_sync());
		}
		for my $i (reverse 0 .. $#clients)
		{
			my $r2 = ex($clients[$i], pq_bind('', [$round]) . pq_execute() . pq_sync());
			$total++;
			$wrong++ unless ($r2->{rows}[0][0] // '') eq "c$i r$round" && ($r2->{rows}[0][1] // '') eq $round;
		}
	}
	is("$wrong of $total", "0 of $total", 'interleaved Parse/Sync, Bind/Sync: no client ever ran another\'s statement');
	w_close($_) for @clients;
}

# ---------------------------------------------------------------------------
# Named statements and schema changes.
{
	my $x = w_login();
	my $y = w_login();

	# DDL through the agent: a fresh Parse afterwards means the new schema
	my $r = ex($x, pq_parse('s1', 'SELECT * FROM t WHERE id = 1') . pq_describe('S', 's1') . pq_sync());
	is_deeply($r->{fields}, [ [ 'id', 'b' ] ], 'X prepares s1 (id, b)');
	no_errors(ex($y, fmsg('Q', "ALTER TABLE t ADD COLUMN c int DEFAULT 7\0")), 'Y alters t through the agent');
	$r = ex($y, pq_parse('s2', 'SELECT * FROM t WHERE id = 1') . pq_describe('S', 's2')
		  . pq_bind('s2') . pq_execute() . pq_sync());
	no_errors($r, 'Y prepares the same text afresh under another name');
	is_deeply([ $r->{fields}, $r->{rows} ], [ [ [ 'id', 'b', 'c' ] ], [ [ 1, 'hello', 7 ] ] ],
		'... and gets the new shape and row');
	$r = ex($x, pq_bind('s1') . pq_execute() . pq_sync());
	sqlstate_is($r, '0A000', 'X\'s s1, described before the change: 0A000 as PostgreSQL says');
	$r = ex($x, pq_close('S', 's1') . pq_parse('s1', 'SELECT * FROM t WHERE id = 1')
		  . pq_describe('S', 's1') . pq_bind('s1') . pq_execute() . pq_sync());
	no_errors($r, 'X re-prepares s1 (Close, Parse), as drivers do after 0A000');
	is_deeply($r->{rows}, [ [ 1, 'hello', 7 ] ], '... and gets the new row');

	# described before a change made directly on the origin, run after it on an
	# origin connection that lacks the statement
	$r = ex($x, pq_parse('q1', 'SELECT * FROM t2') . pq_describe('S', 'q1') . pq_sync());
	is_deeply($r->{fields}, [ [ 'id', 'b' ] ], 'X prepares q1 (id, b)');
	kill_agent_backends();
	$node->safe_psql('app', 'ALTER TABLE t2 DROP COLUMN b, ADD COLUMN c text');
	$r = ex($x, pq_bind('q1') . pq_execute() . pq_sync());
	sqlstate_is($r, '0A000', 'q1 run after the change on a new origin connection: 0A000');
	is(scalar @{ $r->{rows} }, 0, '... never rows of the new shape under the old description');
	$r = ex($x, pq_close('S', 'q1') . pq_parse('q1', 'SELECT * FROM t2') . pq_describe('S', 'q1')
		  . pq_bind('q1') . pq_execute() . pq_sync());
	no_errors($r, 'X re-prepares q1');
	is_deeply($r->{fields}, [ [ 'id', 'c' ] ], '... with the new shape');

	# a change made directly on the origin while the connection has the
	# statement: a driver's re-prepare recovers (the first try may see 0A000, as
	# a statement prepared before the change does on PostgreSQL)
	$r = ex($x, pq_parse('q3', 'SELECT * FROM t3') . pq_describe('S', 'q3') . pq_bind('q3')
		  . pq_execute() . pq_sync());
	no_errors($r, 'X prepares and runs q3');
	$node->safe_psql('app', 'ALTER TABLE t3 ADD COLUMN d int DEFAULT 5');
	my $ok = 0;
	for my $attempt (1 .. 2)
	{
		$r = ex($y, pq_close('S', 'q4') . pq_parse('q4', 'SELECT * FROM t3') . pq_describe('S', 'q4')
			  . pq_bind('q4') . pq_execute() . pq_sync());
		if (!@{ $r->{errors} })
		{
			$ok = 1;
			last;
		}
		is($r->{errors}[0]{C}, '0A000', 'a failed first try is 0A000');
	}
	ok($ok, 'Y\'s fresh Parse of the same text works within two tries (re-prepare recovers)');
	is_deeply($r->{rows}, [ [ 1, 'hello', 5 ] ], '... with the new shape');
	$r = ex($y, pq_bind('q4') . pq_execute() . pq_sync());
	is_deeply($r->{rows}, [ [ 1, 'hello', 5 ] ], '... and it keeps working');
	w_close($x);
	w_close($y);
}

# ---------------------------------------------------------------------------
# DEALLOCATE and DISCARD act on the client's own names, without pinning.
{
	my $c = w_login();
	no_errors(ex($c, pq_parse('p1', 'SELECT 1') . pq_sync()), 'C prepares p1');
	my $r = ex($c, pq_parse('', 'DEALLOCATE ALL') . pq_bind('') . pq_execute() . pq_sync());
	no_errors($r, 'DEALLOCATE ALL by the extended protocol (psycopg 3)');
	is_deeply($r->{tags}, [ 'DEALLOCATE ALL' ], '... its tag');
	$r = ex($c, pq_bind('p1') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', 'p1 is gone for the client');
	not_pinned('DEALLOCATE ALL (extended)');
	$r = ex($c, pq_parse('p1', 'SELECT 2') . pq_bind('p1') . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', '2', 'p1 can be prepared again, with another text');

	no_errors(ex($c, pq_parse('p3', 'SELECT 3') . pq_sync()), 'C prepares p3');
	$r = ex($c, fmsg('Q', "DEALLOCATE p3\0"));
	no_errors($r, 'SQL DEALLOCATE p3 (simple Query)');
	is_deeply($r->{tags}, [ 'DEALLOCATE' ], '... its tag');
	$r = ex($c, pq_bind('p3') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', 'p3 is gone for the client');
	$r = ex($c, pq_bind('p1') . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', '2', 'p1 is still there');
	$r = ex($c, fmsg('Q', "DEALLOCATE nosuch\0"));
	sqlstate_is($r, '26000', 'DEALLOCATE of a name the client does not have: 26000');
	not_pinned('SQL DEALLOCATE');

	$r = ex($c, fmsg('Q', "DEALLOCATE ALL\0"));
	is_deeply($r->{tags}, [ 'DEALLOCATE ALL' ], 'SQL DEALLOCATE ALL');
	$r = ex($c, pq_bind('p1') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', '... p1 is gone');

	no_errors(ex($c, pq_parse('p5', 'SELECT 5') . pq_sync()), 'C prepares p5');
	$r = ex($c, fmsg('Q', "DISCARD ALL\0"));
	is_deeply($r->{tags}, [ 'DISCARD ALL' ], 'DISCARD ALL');
	$r = ex($c, pq_bind('p5') . pq_execute() . pq_sync());
	sqlstate_is($r, '26000', '... drops the client\'s statements too');
	not_pinned('DISCARD ALL');

	# another client's statements are untouched by C's DEALLOCATE ALL
	my $d = w_login();
	no_errors(ex($d, pq_parse('dd', 'SELECT 4') . pq_sync()), 'D prepares dd');
	ex($c, fmsg('Q', "DEALLOCATE ALL\0"));
	$r = ex($d, pq_bind('dd') . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', '4', 'C\'s DEALLOCATE ALL does not touch D\'s statements');
	w_close($c);
	w_close($d);
}

like(slurp_from($log), qr/origin connection .* is ready/, 'the agent logged its origin connections');
$agent->kill_kill;
done_testing();
