# Cancel requests, and the backend keys clients are given, end to end against
# a real origin, with two clients on ONE origin connection:
#  - a cancel that the origin processes late must not cancel the statement
#    that runs next on that connection, another client's or the same
#    client's: the agent holds the connection until the origin has closed
#    the cancel connection (what libpq's PQcancel waits for), and only then
#    closes the client's cancel connection; shown statistically (a cancel
#    sent just as the statement ends, many rounds) and deterministically
#    (the origin's postmaster stopped while the cancel is in flight);
#  - the bound on that wait, and the origin connection or either client
#    going away while a cancel is in flight;
#  - session pooling: the client gets its origin connection at login and the
#    backend's real BackendKeyData, so pg_backend_pid(), pg_cancel_backend()
#    and pg_terminate_backend() agree with it; waiting at login, PAUSE,
#    the reset for the next client, draining; a replication pass-through
#    gets its backend's key too;
#  - transaction pooling keeps the agent's own keys.
#
# Needs agent/hyperdrive (make agent).
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

my $PW = 'app-Secret-27';
my $OPS_PW = 'ops-Secret-27';

# ---------------------------------------------------------------------------
# The origin, the agent, two configs with one origin connection each.
my $node = start_origin('origin', logical => 1);
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW';
CREATE DATABASE app OWNER app;
SQL

my $CONNECT_TIMEOUT = 3;
my $conninfo = "--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app";
my $agent = hd_agent(name => '023_cancel',
	files => { 'users.txt' => qq{"ops" "$OPS_PW"\n} },
	settings => <<"INI",
log_level = info
query_wait_timeout = 5
server_connect_timeout = $CONNECT_TIMEOUT
admin_users = ops
auth_file = users.txt
INI
	configs => [
		[ 'create tx (transaction pooling, limit 1)', 'tx', $conninfo,
			'--sslmode', 'disable', '--origin-connection-limit', '1', '--caching-disabled' ],
		[ 'create sess (session pooling, limit 1)', 'sess', $conninfo,
			'--sslmode', 'disable', '--origin-connection-limit', '1', '--pool-mode', 'session',
			'--caching-disabled' ],
		[ 'create rep (for a replication connection)', 'rep', $conninfo,
			'--sslmode', 'disable', '--caching-disabled' ]
	],
	bail => 1);
my ($log, $aport) = @$agent{qw(log port)};
ok($agent, 'the agent listens');

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'tx');

# A connection straight to the origin's backend over its Unix socket, as
# superuser: it works while the postmaster is stopped (below).
sub direct
{
	my $c = w_login(path => $node->host . '/.s.PGSQL.' . $oport, user => 'postgres',
		db => 'postgres', password => undef);
	BAIL_OUT('no direct connection to the origin: ' . explain($c->{error})) unless $c->{ready};
	return $c;
}

# One value through a PgWire connection.
sub value
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql);
	return @{ $r->{errors} } ? 'ERROR ' . $r->{errors}[0]{C} : $r->{rows}[0][0] // '';
}

sub sqlstate { my ($r) = @_; return $r->{errors}[0]{C} // ''; }

sub median { my @v = sort { $a <=> $b } @_; return $v[ int($#v / 2) ]; }

# The postmaster stopped (SIGSTOP): the kernel still accepts connections to
# it, the backends run on, but nothing processes a cancel request until
# SIGCONT. So a cancel stays in flight for as long as a test needs.
my $stopped = 0;
sub stop_postmaster { kill 'STOP', $node->{_pid}; $stopped = 1; }
sub cont_postmaster { kill 'CONT', $node->{_pid}; $stopped = 0; }
END { kill 'CONT', $node->{_pid} if $stopped && $node && $node->{_pid}; }

# The agent's origin connection for config tx: its backend pid.
sub tx_backend
{
	my ($d) = @_;
	return value($d, q{SELECT pid FROM pg_stat_activity WHERE datname = 'app'
		AND usename = 'app' AND client_addr IS NOT NULL AND backend_type = 'client backend'
		AND application_name NOT LIKE 'hyperdrive %'});
}

# Rewrites the settings (with $extra lines) and reloads them (SIGHUP).
sub reload_settings
{
	my ($extra) = @_;
	my $pos = -s $log;
	$agent->write_settings($extra);
	$agent->signal('HUP');
	ok(wait_for(sub { slurp_from($log, $pos) =~ /settings reloaded/ }), 'settings reloaded');
}

sub agent_ok
{
	my ($after) = @_;
	my $c = w_login();
	my $v = $c->{ready} ? value($c, "SELECT 'alive'") : 'login: ' . ($c->{error}{M} // '?');
	close $c->{sock} if $c->{sock};
	is($v, 'alive', "the agent still serves after: $after");
}

# ---------------------------------------------------------------------------
# A cancel for A sent just as A's statement ends must not cancel what runs
# next on A's origin connection: B's statement (queued behind A's), or A's
# own next one, sent once A has its answer and its cancel is done (the
# cancel connection closed: libpq's PQcancel returns then, and pgjdbc waits
# for it before the next statement; directly, a client that does not wait
# has its next statement cancelled too, about 4 times in 10). The moment is
# tuned as the rounds go: a cancel that hit A came too early, one that did
# not came late enough, so the cancel keeps arriving about when A's
# statement ends.
sub race
{
	my ($name, $next_by_a, $rounds) = @_;
	my $a = w_login();
	my $b = w_login();
	ok($a->{ready} && $b->{ready}, "$name: two clients on one origin connection");
	my ($delay, $hit_a, $wrong, $cancel_open) = (0.05, 0, 0, 0);
	my @took;						# from a cancel to A's answer and the cancel's end
	for my $round (1 .. $rounds)
	{
		my $t0 = time;
		w_send($a, fmsg('Q', "SELECT pg_sleep(0.05)\0"));
		if (!$next_by_a)
		{
			sleep 0.005;
			w_send($b, fmsg('Q', "SELECT pg_sleep(0.3), 'b'\0"));
		}
		my $left = $t0 + $delay - time;
		sleep $left if $left > 0;
		my $sent = time;
		my $k = w_cancel($a);
		my $ra = w_result($a, 10);
		my ($type) = $next_by_a ? w_msg($k, 10) : ();
		push @took, time - $sent if $next_by_a;
		my $rn;
		if ($next_by_a)
		{
			w_send($a, fmsg('Q', "SELECT pg_sleep(0.3), 'a'\0"));
			$rn = w_result($a, 10);
		}
		else
		{
			$rn = w_result($b, 10);
			($type) = w_msg($k, 10);
		}
		$cancel_open++ unless $type eq 'EOF';
		close $k->{sock};
		my $a_cancelled = sqlstate($ra) eq '57014' ? 1 : 0;
		$hit_a += $a_cancelled;
		if (@{ $rn->{errors} } || !defined $rn->{status} || ($rn->{rows}[0][1] // '') eq '')
		{
			$wrong++;
			diag("$name, round $round: the next statement got "
				  . (sqlstate($rn) || ($rn->{timeout} ? 'no answer' : 'no rows')));
		}
		$delay += $a_cancelled ? 0.002 : -0.002;
		$delay = 0 if $delay < 0;
	}
	is($wrong, 0, "$name: the next statement was never cancelled ($rounds rounds)");
	is($cancel_open, 0, "$name: every cancel connection was closed by the agent");
	note("$name: the cancel hit A's own statement in $hit_a of $rounds rounds; last delay "
		  . sprintf('%.3f s', $delay)
		  . (@took ? sprintf('; from its cancel to its next statement A waited %.1f ms (median)', 1000 * median(@took)) : ''));
	close $_->{sock} for $a, $b;
}

race('cancel at the end, another client next', 0, 40);
race('cancel at the end, the same client next', 1, 40);
agent_ok('the cancel races');

# ---------------------------------------------------------------------------
# Deterministic: the postmaster is stopped while the cancel is in flight.
{
	my $d = direct();
	my $a = w_login();
	my $b = w_login();
	ok($a->{ready} && $b->{ready}, 'stopped postmaster: two clients');
	is(value($a, "SELECT 'warm'"), 'warm', 'stopped postmaster: the origin connection is open');
	my $backend = tx_backend($d);
	ok($backend, "stopped postmaster: the origin connection's backend is $backend");

	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(0.4), 'first'\0"));
	ok(wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $backend") eq 'active' }),
		"stopped postmaster: A's statement runs");
	my $k = w_cancel($a);
	my $r = w_result($a, 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'first',
		"stopped postmaster: A's statement ends normally (the cancel is not processed yet)")
	  or diag(explain $r);
	my ($type) = w_msg($k, 0.5);
	is($type, 'TIMEOUT', 'stopped postmaster: the cancel connection stays open meanwhile');

	w_send($a, fmsg('Q', "SELECT pg_sleep(1), 'second'\0"));
	w_send($b, fmsg('Q', "SELECT 'b'\0"));
	sleep 0.3;
	# (the last statement is A's first, or the agent's session-state check
	# sent right behind it, before the cancel: client.c, state_check.c)
	like(value($d, "SELECT state || ': ' || query FROM pg_stat_activity WHERE pid = $backend"),
		qr/^idle: (SELECT pg_sleep\(0\.4\), 'first'|SELECT (hyperdrive\.session_state|pg_catalog\.string_agg)\()/,
		'stopped postmaster: nothing more runs on the origin connection while the cancel is in flight');

	cont_postmaster();
	($type) = w_msg($k, 10);
	is($type, 'EOF', 'postmaster continued: the cancel connection is closed');
	$r = w_result($a, 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'second',
		"postmaster continued: A's next statement runs, and is not cancelled")
	  or diag(explain $r);
	$r = w_result($b, 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][0] // '') eq 'b', "and B's statement runs")
	  or diag(explain $r);
	is(tx_backend($d), $backend, 'on the same origin connection');

	# The bound: the origin never answers the cancel within
	# server_connect_timeout. The cancel may still land, so the origin
	# connection is not reused: the next statement runs on a new one.
	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(0.4), 'third'\0"));
	ok(wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $backend") eq 'active' }),
		"stopped postmaster: A's third statement runs");
	my $start = time;
	$k = w_cancel($a);
	$r = w_result($a, 10);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'third', "A's third statement ends normally");
	($type) = w_msg($k, $CONNECT_TIMEOUT + 8);
	is($type, 'EOF', 'an unanswered cancel: the cancel connection is closed after server_connect_timeout');
	ok(time - $start >= $CONNECT_TIMEOUT - 0.5,
		sprintf('not before it (%.1f s; server_connect_timeout %d s)', time - $start, $CONNECT_TIMEOUT));
	ok(wait_for(sub { value($d, "SELECT count(*) FROM pg_stat_activity WHERE pid = $backend") eq '0' }),
		'the origin connection it was for is closed, not reused');
	cont_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(0.5), 'fourth'\0"));
	$r = w_result($a, 15);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'fourth',
		"A's fourth statement runs, not cancelled") or diag(explain $r);
	isnt(tx_backend($d), $backend, 'on a new origin connection');
	close $_->{sock} for $a, $b, $d;
}
agent_ok('the stopped postmaster');

# ---------------------------------------------------------------------------
# A cancel of a running statement still cancels it, and its connection is
# closed once done.
{
	my $a = w_login();
	my $b = w_login();
	w_send($a, fmsg('Q', "SELECT pg_sleep(30)\0"));
	my $d = direct();
	ok(wait_for(sub { value($d, q{SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'}) eq '1' }),
		'cancel: the statement runs');
	w_send($b, fmsg('Q', "SELECT 'b-after'\0"));
	my $start = time;
	my $k = w_cancel($a);
	my $r = w_result($a, 10);
	is(sqlstate($r), '57014', 'cancel: the running statement ends with 57014');
	ok(time - $start < 5, sprintf('cancel: at once (%.1f s)', time - $start));
	my ($type) = w_msg($k, 10);
	is($type, 'EOF', 'cancel: the cancel connection is closed');
	$r = w_result($b, 10);
	is($r->{rows}[0][0] // sqlstate($r), 'b-after', 'cancel: the client queued behind it runs next');
	is(value($a, "SELECT 'a-after'"), 'a-after', 'cancel: the cancelled client goes on');
	close $_->{sock} for $a, $b, $d;
}

# ---------------------------------------------------------------------------
# Lifetimes: whatever a cancel was for may go away while it is in flight.
{
	my $d = direct();

	# the client whose statement it cancels disconnects
	my $a = w_login();
	is(value($a, "SELECT 'warm'"), 'warm', 'lifetimes: a client');
	my $backend = tx_backend($d);
	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(1)\0"));
	wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $backend") eq 'active' });
	my $k = w_cancel($a);
	sleep 0.2;
	close $a->{sock};
	ok(wait_for(sub { value($d, "SELECT count(*) FROM pg_stat_activity WHERE pid = $backend") eq '0' }),
		'lifetimes: the client left in its statement: its origin connection is closed');
	cont_postmaster();
	my ($type) = w_msg($k, 10);
	is($type, 'EOF', 'lifetimes: the cancel still completes');

	# the requester does not wait for the answer
	$a = w_login();
	is(value($a, "SELECT 'warm'"), 'warm', 'lifetimes: another client');
	$backend = tx_backend($d);
	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(0.3), 'done'\0"));
	wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $backend") eq 'active' });
	$k = w_cancel($a);
	sleep 0.2;
	close $k->{sock};
	my $r = w_result($a, 10);
	is($r->{rows}[0][1] // sqlstate($r), 'done', 'lifetimes: the requester left: the statement ends');
	cont_postmaster();
	is(value($a, "SELECT 'next'"), 'next', 'lifetimes: and the client goes on');

	# the origin ends the backend while the cancel for it is in flight
	stop_postmaster();
	w_send($a, fmsg('Q', "SELECT pg_sleep(5)\0"));
	wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $backend") eq 'active' });
	$k = w_cancel($a);
	sleep 0.2;
	is(value($d, "SELECT pg_terminate_backend($backend)"), 't', 'lifetimes: the backend is terminated');
	$r = w_result($a, 10);
	is(sqlstate($r), '57P01', 'lifetimes: its client is told (57P01)');
	cont_postmaster();
	($type) = w_msg($k, 10);
	is($type, 'EOF', 'lifetimes: the cancel completes');
	close $_->{sock} for $a, $d;
}
agent_ok('cancels whose client, requester or origin connection went away');

# ---------------------------------------------------------------------------
# Transaction pooling: the agent's own keys (a client has no origin
# connection of its own).
{
	my $a = w_login();
	my $pid = value($a, 'SELECT pg_backend_pid()');
	ok($a->{pid} && $pid =~ /^\d+$/ && $a->{pid} != $pid,
		"transaction pooling: BackendKeyData is the agent's ($a->{pid}), not the backend's ($pid)");
	close $a->{sock};
}

# ---------------------------------------------------------------------------
# Session pooling: the origin connection from login, and its real key.
{
	my $s = w_login(db => 'sess');
	ok($s->{ready}, 'session: logged in');
	my $pid = value($s, 'SELECT pg_backend_pid()');
	is($s->{pid}, $pid, "session: BackendKeyData's pid is the backend's (pg_backend_pid() $pid)");

	# a cancel with that key, through the agent
	w_send($s, fmsg('Q', "SELECT pg_sleep(30)\0"));
	my $d = direct();
	ok(wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'active' }),
		'session: a statement runs');
	my $k = w_cancel($s);
	my $r = w_result($s, 10);
	is(sqlstate($r), '57014', 'session: a cancel with that key cancels it (57014)');
	my ($type) = w_msg($k, 10);
	is($type, 'EOF', 'session: the cancel connection is closed');

	# pg_cancel_backend() from another connection
	w_send($s, fmsg('Q', "SELECT pg_sleep(30)\0"));
	ok(wait_for(sub { value($d, "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'active' }),
		'session: another statement runs');
	is(value($d, "SELECT pg_cancel_backend($s->{pid})"), 't', 'session: pg_cancel_backend(pid)');
	$r = w_result($s, 10);
	is(sqlstate($r), '57014', 'session: cancels the client\'s statement');
	is(value($s, 'SELECT pg_backend_pid()'), $pid, 'session: the same backend all along');

	# the next client waits at login while the only origin connection is taken
	my $s2 = w_login(db => 'sess', timeout => 2);
	is($s2->{error}{C}, 'TIMEOUT', 'session: at the limit, the next client waits at login');
	ok($s2->{auth_ok} && !$s2->{pid}, 'session: authenticated, no BackendKeyData yet');
	value($s, "SET work_mem = '7MB'");
	close $s->{sock};
	w_login_wait($s2, 10);
	ok($s2->{ready}, 'session: it gets in when the first client leaves');
	is($s2->{pid}, $pid, 'session: with the real key of the connection it got');
	is(value($s2, 'SHOW work_mem'), '4MB', 'session: reset (DISCARD ALL) in between');

	# pg_terminate_backend() from another connection
	is(value($d, "SELECT pg_terminate_backend($s2->{pid})"), 't', 'session: pg_terminate_backend(pid)');
	my $body;
	($type, $body) = w_msg($s2, 10);
	my $f = $type eq 'E' ? err_fields($body) : {};
	ok($type eq 'E' && ($f->{V} // '') eq 'FATAL' && ($f->{C} // '') eq '57P01',
		"session: the client gets the origin's FATAL 57P01") or diag("$type: " . explain($f));
	($type) = w_msg($s2, 10);
	is($type, 'EOF', 'session: then the connection closes (nothing added by the agent)');

	# waiting at login is bounded by query_wait_timeout
	my $s3 = w_login(db => 'sess');
	ok($s3->{ready}, 'session: a new client after the termination');
	my $start = time;
	my $s4 = w_login(db => 'sess', timeout => 15);
	ok(($s4->{error}{V} // '') eq 'FATAL' && ($s4->{error}{C} // '') eq '53300'
		  && ($s4->{error}{M} // '') =~ /query_wait_timeout/,
		'session: waiting at login ends with 53300 (query_wait_timeout)') or diag(explain $s4->{error});
	ok(time - $start >= 4, sprintf('session: after query_wait_timeout (%.1f s)', time - $start));
	close $s3->{sock};

	# PAUSE: logins wait; RESUME lets them in
	my $ops = w_login(db => 'hyperdrive', user => 'ops', password => $OPS_PW);
	ok($ops->{ready}, 'admin console');
	w_query($ops, 'PAUSE sess');
	my $s5 = w_login(db => 'sess', timeout => 2);
	is($s5->{error}{C}, 'TIMEOUT', 'session: PAUSE: a login waits');
	w_query($ops, 'RESUME sess');
	w_login_wait($s5, 10);
	ok($s5->{ready}, 'session: RESUME: it gets in');
	is(value($s5, 'SELECT pg_backend_pid()'), $s5->{pid}, 'session: with its backend\'s key');

	# a replication connection has its own origin connection: its real key too
	my $rep = w_login(db => 'rep', params => { replication => 'database' });
	ok($rep->{ready}, 'replication connection');
	is(value($rep, 'SELECT pg_backend_pid()'), $rep->{pid},
		'replication connection: BackendKeyData is its backend\'s');
	close $rep->{sock};

	# client_idle_timeout: a session client with a transaction open is not
	# idle, one without is
	reload_settings("client_idle_timeout = 1\n");
	w_query($s5, 'BEGIN');
	sleep 2.5;
	is(value($s5, "SELECT 'in a transaction'"), 'in a transaction',
		'client_idle_timeout: a session client inside a transaction stays');
	w_query($s5, 'COMMIT');
	($type, $body) = w_msg($s5, 10);
	$f = $type eq 'E' ? err_fields($body) : {};
	is($f->{C}, '57P05', 'client_idle_timeout: an idle session client is closed (57P05)');
	reload_settings();

	# SIGTERM: an idle session client is let go, and the agent exits
	my $s6 = w_login(db => 'sess');
	ok($s6->{ready}, 'session: one more client');
	$agent->signal('TERM');
	($type, $body) = w_msg($s6, 5);
	$f = $type eq 'E' ? err_fields($body) : {};
	is($f->{C}, '57P01', 'drain: an idle session client is told the agent is stopping');
	my $exited = eval { local $SIG{ALRM} = sub { die "timeout\n" }; alarm 10; $agent->finish; alarm 0; 1 };
	ok($exited, 'drain: the agent exits');
	close $_->{sock} for $ops, $d;
}

my $agent_log = slurp_from($log, 0);
unlike($agent_log, qr/AddressSanitizer|runtime error|Segmentation|double free/, 'agent log: no crash');
note("agent log (end):\n" . slurp_from($log, 0, 6000)) unless Test::More->builder->is_passing;
$agent->kill_kill if $agent->pumpable;
$node->stop;
done_testing();
