# The session-state check sent right behind a plain autocommit Query
# (client.c check_may_follow(), state_check.c), with two clients on ONE
# origin connection (origin_connection_limit 1) and a check made slow on the
# origin (hyperdrive.session_state() wrapped in a 0.5 s sleep, counted in a
# sequence) so that what happens while it runs can be seen:
#  - which Queries and extended-protocol batches it follows (a plain SELECT:
#    yes; BEGIN, two statements, a named statement whose text is BEGIN: no)
#    and that it still catches what server-side code did in them;
#  - a client's cancel that arrives when nothing but the check is owed is
#    dropped (nothing of the client's runs): the check runs once, the client
#    is not pinned;
#  - a client's cancel forwarded while its Query ran, landing on the check
#    after the Query ended (the origin's postmaster stopped until then): the
#    check is sent again, the client is not pinned, the other client gets
#    the connection;
#  - a check its client's statement_timeout cancels is asked again only
#    once, then fails as any check does.
#
# Needs agent/hyperdrive (make agent) and the extension installed.
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

my $PW = 'app-Secret-32';

my $node = start_origin('origin', logical => 1);
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN PASSWORD '$PW';
CREATE DATABASE app OWNER app;
SQL
# The check, counted (before it sleeps: a canceled one counts too) and slowed
# down: the same report, 0.5 s later.
$node->safe_psql('app', <<'SQL');
CREATE EXTENSION hyperdrive;
ALTER FUNCTION hyperdrive.session_state() RENAME TO session_state_real;
CREATE SEQUENCE public.checks;
GRANT USAGE ON SEQUENCE public.checks TO app;
CREATE FUNCTION hyperdrive.session_state() RETURNS text LANGUAGE sql AS
  $$ SELECT hyperdrive.session_state_real()
     FROM (SELECT nextval('public.checks'), pg_sleep(0.5)) AS slow $$;
-- server-side code the statement's text does not show
CREATE FUNCTION public.set_tenant(t text) RETURNS text LANGUAGE sql AS
  $$ SELECT set_config('app.tenant', t, false) $$;
SQL

my $agent = hd_agent(name => '032_state_check_pipelined',
	settings => "log_level = debug\nquery_wait_timeout = 10\n",
	configs => [ [ 'create one (limit 1)', 'one',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--origin-connection-limit', '1', '--caching-disabled' ] ],
	bail => 1);
my ($log, $aport) = @$agent{qw(log port)};

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'one');

sub val
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql);
	return 'ERROR ' . $r->{errors}[0]{C} if @{ $r->{errors} };
	return $r->{rows}[0][0];
}

# Checks run on the origin so far (the sequence, read without using it up).
sub checks
{
	return $node->safe_psql('app', 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.checks');
}

sub follows_in
{
	my ($from) = @_;
	my $text = slurp_from($log, $from);
	my @n = $text =~ /the session-state check follows the Query/g;
	return scalar @n;
}

my $stopped = 0;
sub stop_postmaster { kill 'STOP', $node->{_pid}; $stopped = 1; }
sub cont_postmaster { kill 'CONT', $node->{_pid}; $stopped = 0; }
END { kill 'CONT', $node->{_pid} if $stopped && $node && $node->{_pid}; }

my $a = w_login();
my $b = w_login();
ok($a->{ready} && $b->{ready}, 'two clients on one origin connection');
is(val($a, "SELECT 'warm'"), 'warm', 'a first statement (the connection learns its state)');
sleep 1.2;							# its checks are over

# ---------------------------------------------------------------------------
# Which Queries the check follows at once
{
	my $pos = -s $log;
	my $before = checks();
	is(val($a, "SELECT 'plain';"), 'plain', 'a plain SELECT');
	ok(wait_for(sub { follows_in($pos) == 1 }), 'the check was sent right behind it');
	ok(wait_for(sub { checks() == $before + 1 }), 'and ran once on the origin');

	$pos = -s $log;
	is(val($a, 'BEGIN'), undef, 'BEGIN');
	is(val($a, "SELECT 'in block'"), 'in block', 'a SELECT inside the block');
	is(val($a, 'COMMIT'), undef, 'COMMIT');
	is(val($a, "SELECT 'one'; SELECT 'two'"), 'one', 'two statements in one Query');
	sleep 1.2;
	is(follows_in($pos), 0, 'none of those: their check waits for their ReadyForQuery');

	# server-side code in a plain SELECT: still caught, the client pinned
	my $c = w_login();
	is(val($c, "SELECT set_tenant('c')"), 'c',
		"another client's SELECT calls a function that calls set_config(..., false)");
	ok(wait_for(sub { slurp_from($log, $pos) =~ /session state changed on the origin by server-side code \(app\.tenant\)/ }),
		'the check behind it saw it: that client keeps the connection');
	w_close($c);
	is(val($b, "SELECT coalesce(current_setting('app.tenant', true), '')"), '',
		'once it left, the other client gets a connection without its app.tenant');
	sleep 1.2;
}

# ---------------------------------------------------------------------------
# Extended-protocol batches
sub batch_follows_in
{
	my ($from) = @_;
	my @n = slurp_from($log, $from) =~ /the session-state check follows the batch/g;
	return scalar @n;
}

sub ext
{
	my ($c, $bytes) = @_;
	w_send($c, $bytes);
	my $r = w_result($c);
	return 'ERROR ' . $r->{errors}[0]{C} if @{ $r->{errors} };
	return $r->{rows}[0][0];
}

{
	my $pos = -s $log;
	is(ext($a, extended_batch("SELECT 'ext'")), 'ext', 'a batch of one plain SELECT');
	ok(wait_for(sub { batch_follows_in($pos) == 1 }), 'the check was sent right behind its Sync');
	sleep 0.7;

	# a named statement whose text is BEGIN, bound in a later batch
	$pos = -s $log;
	is(ext($a, pq_parse('b', 'BEGIN') . pq_sync()), undef, 'Parse of a statement "b": BEGIN');
	is(ext($a, pq_parse('s', "SELECT 'named'") . pq_sync()), undef, 'and of "s": a SELECT');
	sleep 0.7;
	is(batch_follows_in($pos), 0, 'neither batch is followed (a Parse alone, BEGIN; its own check)');
	$pos = -s $log;
	is(ext($a, pq_bind('b') . pq_execute() . pq_sync()), undef, 'a batch that runs "b" (BEGIN)');
	is(ext($a, pq_bind('s') . pq_execute() . pq_sync()), 'named', 'a batch that runs "s" in the block');
	is(ext($a, pq_parse('', 'COMMIT') . pq_bind('') . pq_execute() . pq_sync()), undef, 'COMMIT');
	sleep 0.7;
	is(batch_follows_in($pos), 0, 'none of them is followed at once');
	$pos = -s $log;
	is(ext($a, pq_bind('s') . pq_execute() . pq_sync()), 'named', 'a batch that runs "s" alone');
	ok(wait_for(sub { batch_follows_in($pos) == 1 }), 'is followed (its statement is plain)');
	sleep 0.7;

	# server-side code in a plain batch: still caught
	$pos = -s $log;
	my $c = w_login();
	is(ext($c, extended_batch("SELECT set_tenant('e')")), 'e',
		"another client's batch calls a function that calls set_config(..., false)");
	ok(wait_for(sub { slurp_from($log, $pos) =~ /session state changed on the origin by server-side code \(app\.tenant\)/ }),
		'the check behind it saw it: that client keeps the connection');
	w_close($c);
	is(ext($b, extended_batch("SELECT coalesce(current_setting('app.tenant', true), '')")), '',
		'once it left, the other client gets a connection without its app.tenant');
	sleep 1.2;
}

# ---------------------------------------------------------------------------
# A cancel while nothing but the check is owed: dropped
{
	my $pos = -s $log;
	my $before = checks();
	is(val($a, "SELECT 'then cancel'"), 'then cancel', 'A: a plain SELECT, answered');
	my $k = w_cancel($a);			# the check still sleeps on the origin
	my ($type) = w_msg($k, 5);
	is($type, 'EOF', 'A: its cancel connection is closed');
	my $t0 = time;
	is(val($b, "SELECT 'b after'"), 'b after', 'B gets the one connection after the check');
	ok(wait_for(sub { checks() >= $before + 2 }), "two checks ran: A's and B's");
	sleep 0.6;
	is(checks(), $before + 2, "A's check ran once: the cancel did not reach it");
	unlike(slurp_from($log, $pos), qr/keeps this origin connection/, 'nobody was pinned');
	is(val($a, "SELECT 'a again'"), 'a again', 'A goes on');
	sleep 1.2;
}

# ---------------------------------------------------------------------------
# A cancel forwarded while A's Query ran, landing on the check behind it
{
	my $pos = -s $log;
	my $before = checks();
	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(0.3), 'slow'\0"));
	sleep 0.1;
	my $k = w_cancel($a);			# forwarded; the stopped postmaster holds it
	my $r = w_result($a, 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'slow',
		'A: its statement ends normally (the cancel is not processed yet)')
	  or diag(explain $r);
	cont_postmaster();				# now the check runs: the cancel lands on it
	my ($type) = w_msg($k, 10);
	is($type, 'EOF', 'A: its cancel connection is closed once the origin processed it');
	is(val($b, "SELECT 'b next'"), 'b next', 'B gets the connection: A was not pinned');
	unlike(slurp_from($log, $pos), qr/keeps this origin connection/, 'nobody was pinned');
	ok(wait_for(sub { checks() >= $before + 3 }),
		"the canceled check was sent again: A's two and B's (" . (checks() - $before) . ' checks)');
	is(val($a, "SELECT 'a last'"), 'a last', 'A goes on, not cancelled');
}

# ---------------------------------------------------------------------------
# A check that its client's own statement_timeout cancels (57014 as a cancel
# is): asked again once, then a failed check as any other (the client keeps
# the connection), never again and again.
{
	my $pos = -s $log;
	my $d = w_login();
	is(val($d, "SET statement_timeout = '100ms'"), undef, 'D: statement_timeout 100 ms (carried)');
	is(val($d, "SELECT 'd'"), 'd', 'D: a plain SELECT; the 0.5 s check behind it times out');
	my $r = w_query($d, "SELECT 'd again'", 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][0] // '') eq 'd again', 'D: its next statement is answered')
	  or diag(explain $r);
	like(slurp_from($log, $pos), qr/keeps this origin connection/, 'D keeps the connection (the check failed)');
	w_close($d);
}

w_close($a);
w_close($b);
done_testing();
