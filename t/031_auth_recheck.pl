# The config's own user is re-checked on the origin (docs/agent.md, "Clients
# and authentication", auth_recheck_interval): after ALTER ROLE ... NOLOGIN,
# a VALID UNTIL in the past, or a new password on the origin, new clients of
# that user are refused with the origin's error within the interval, while
# clients already in keep their sessions; once undone, clients get in again.
# The check is not held up by a full pool, and clients logging in together
# share one.
#
# Needs agent/hyperdrive (make agent).
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'recheck-pw-28';
my $INTERVAL = 1;	# auth_recheck_interval, seconds

my $node = start_origin('origin', conf => "log_connections = on\n");
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'; CREATE DATABASE app OWNER app");

my $agent = hd_agent(name => '031_auth_recheck',
	settings => "log_level = info\nauth_type = password\nauth_recheck_interval = ${INTERVAL}s\n"
	  . "server_login_retry = 200ms\nquery_wait_timeout = 20\n",
	configs => [ [ 'create app', 'app',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app", '--sslmode', 'disable',
		'--origin-connection-limit', '2', '--caching-disabled' ] ]);
ok($agent, 'the agent listens');
my ($log, $aport) = @$agent{qw(log port)};
$PgWire::PORT = $aport;
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app', timeout => 20);

# A new client: 'ok' (it logged in and ran a query), or the SQLSTATE it got.
sub new_client
{
	my $c = w_login();
	return $c->{error}{C} // 'none' unless $c->{ready};
	my $r = w_query($c, 'SELECT 1', 20);
	close $c->{sock};
	return @{ $r->{errors} } ? $r->{errors}[0]{C} : ($r->{rows}[0][0] // '') eq '1' ? 'ok' : 'none';
}

sub origin { my ($sql) = @_; return $node->safe_psql('postgres', $sql); }

# The agent's connections to the origin as app that are idle.
sub idle_origin_connections
{
	return origin(q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'
		AND client_addr IS NOT NULL AND application_name NOT LIKE 'hyperdrive %' AND state = 'idle'});
}

is(new_client(), 'ok', 'a client logs in');

# Two clients hold both origin connections (origin_connection_limit 2) in
# transactions: a login that needs a check must not wait for them.
my @holders = map { w_login() } 1 .. 2;
for my $h (@holders)
{
	my $r = w_query($h, 'BEGIN; SELECT 1', 20);
	ok(!@{ $r->{errors} } && ($r->{status} // '') eq 'T', 'a client holds an origin connection in a transaction');
}
sleep($INTERVAL + 0.2);		# the last proof gets older than the interval
{
	my $t0 = time;
	my $c = w_login();
	ok($c->{ready}, sprintf('with the pool full, a client still logs in (%.1f s): the check is outside origin_connection_limit',
		time - $t0)) or diag(explain $c->{error});
	close $c->{sock} if $c->{sock};
}
for my $h (@holders)
{
	my $r = w_query($h, 'COMMIT', 20);
	ok(!@{ $r->{errors} }, 'the holder commits');
}
is(new_client(), 'ok', 'a client runs a query');
ok(wait_for(sub { idle_origin_connections() >= 1 }), 'an origin connection is idle in the pool');

# Each way the origin can stop accepting the config's login, and back.
for my $case (
	[ 'NOLOGIN', 'ALTER ROLE app NOLOGIN', 'ALTER ROLE app LOGIN', '28000', qr/not permitted to log in/ ],
	[ 'VALID UNTIL in the past', "ALTER ROLE app VALID UNTIL '2000-01-01'", "ALTER ROLE app VALID UNTIL 'infinity'",
	  '28P01', qr/password authentication failed for user "app"/ ],
	[ 'a new password', "ALTER ROLE app PASSWORD 'another-pw'", "ALTER ROLE app PASSWORD '$PW'",
	  '28P01', qr/password authentication failed for user "app"/ ])
{
	my ($name, $do, $undo, $sqlstate, $message) = @$case;
	# in transaction pooling a client keeps its origin connection only inside a
	# transaction: between two, its next one would need a new origin login
	my $old = w_login();
	my $r = w_query($old, 'BEGIN', 20);
	ok($old->{ready} && ($r->{status} // '') eq 'T', "$name: a client is in before, in a transaction");
	origin($do);
	my $t0 = time;
	my ($got, $c) = ('');
	ok(wait_for(sub { $c = w_login(); $got = $c->{error}{C} // 'ok'; close $c->{sock} if $c->{sock}; $got eq $sqlstate }, $INTERVAL + 5),
		sprintf("$name: a new client is refused with %s within the interval (%.1f s)", $sqlstate, time - $t0))
	  or diag("last: $got");
	like($c->{error}{M} // '', $message, "$name: with the origin's message");
	is(new_client(), $sqlstate, "$name: and so is the next one");
	is(idle_origin_connections(), '0', "$name: the pool's idle origin connections are closed");
	$r = w_query($old, "SELECT 'still here'", 20);
	is($r->{rows}[0][0], 'still here', "$name: the client that was in keeps its session");
	$r = w_query($old, 'COMMIT', 20);
	ok(!@{ $r->{errors} }, "$name: and commits");
	close $old->{sock};
	origin($undo);
	$t0 = time;
	ok(wait_for(sub { new_client() eq 'ok' }, $INTERVAL + 5),
		sprintf("$name undone: clients get in again (%.1f s)", time - $t0));
}

# Clients logging in together share one check: count the origin's logins as
# app while ten clients log in at once (cleartext: each sends its password
# right after its startup packet, PgWire's w_login_send()).
{
	sleep($INTERVAL + 0.2);		# the last proof gets older than the interval
	my $logpos = -s $node->logfile;
	my @c = map { w_login_send() } 1 .. 10;
	@c = map { w_login(conn => $_, sent => 1) } @c;
	is(scalar(grep { $_->{ready} } @c), 10, 'ten clients logging in together all get in');
	close $_->{sock} for grep { $_->{sock} } @c;
	my $logins = () = slurp_from($node->logfile, $logpos) =~ /connection authorized: user=app /g;
	ok($logins >= 1 && $logins <= 2, "they cost the origin one or two logins, not ten ($logins)");
}

$agent->signal('INT');
$agent->finish;
done_testing();
