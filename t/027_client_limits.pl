# What one client (or many) cannot take from the others: time before login
# (client_login_timeout), file descriptors (the open files limit, accept()
# failing with EMFILE), and the log (control characters in what clients
# send, repeated lines).
#
#   - client_login_timeout: silent connections, a half-done SCRAM exchange,
#     an SSLRequest and nothing after, half a startup packet, and a client
#     waiting for its pool's first origin connection are closed; clients
#     that fill max_client_conn without logging in lock nobody out for good;
#     a logged-in client is not touched.
#   - open files: the agent raises its soft limit to what max_client_conn and
#     the configs need; with a hard limit below that it refuses to start and
#     says what to lower; out of descriptors, it neither spins nor floods its
#     log, serves its clients, and accepts again once descriptors are free.
#   - the log: user and database names and application_name with newlines
#     and escape sequences are escaped, never forge a line.
#
# Needs agent/hyperdrive (make agent) and prlimit (util-linux).
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'limits-pw-27';

my $node = start_origin('origin');
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'; CREATE DATABASE app OWNER app");

my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_client_limits'));
my $logdir = $PostgreSQL::Test::Utils::log_path;

# An agent (not started) with its settings file and state directory under
# $tmp/NAME, its log $log, config app (and more configs: name => port of
# their origin).
sub agent_setup
{
	my ($name, $port, $log, $settings, %configs) = @_;
	$configs{app} = $oport;
	return hd_agent(dir => "$tmp/$name", port => $port, log => $log,
		settings => "log_level = info\n$settings", start => 0,
		configs => [
			map {
				[ "$name: create $_", $_,
					"--connection-string=postgresql://app:$PW\@127.0.0.1:$configs{$_}/app",
					'--sslmode', 'disable', '--caching-disabled' ]
			} sort keys %configs
		]);
}

# Lines of a log file from byte $pos on.
sub log_lines_from
{
	my ($path, $pos) = @_;
	return scalar(() = slurp_from($path, $pos) =~ /\n/g);
}

# What a connection receives before the agent closes it: the messages
# (type and fields of an ErrorResponse), 'EOF' once closed, or 'TIMEOUT'.
sub until_closed
{
	my ($c, $seconds) = @_;
	my @got;
	for (;;)
	{
		my ($type, $body) = w_msg($c, $seconds);
		if ($type eq 'EOF' || $type eq 'TIMEOUT' || $type eq 'BADLEN')
		{
			push @got, $type;
			return \@got;
		}
		push @got, $type eq 'E' ? err_fields($body) : $type;
	}
}

# ===========================================================================
# client_login_timeout
# ===========================================================================

# An "origin" that accepts TCP connections and never answers: the pool's
# first origin connection never logs in.
my $blackhole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
	Proto => 'tcp', ReuseAddr => 1) or die "blackhole: $!";

my $aport = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$logdir/027_client_limits_agent.log";
my $agent = agent_setup('login', $aport, $log,
	"max_client_conn = 3\nclient_login_timeout = 2\nserver_connect_timeout = 60\n",
	blackhole => $blackhole->sockport)->start;
ok($agent, 'the agent starts with client_login_timeout = 2') or BAIL_OUT('no agent');
$PgWire::PORT = $aport;
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app');

# the connection of the start's probe may still count: wait until it is gone
wait_for(sub { my $c = w_login(); my $ok = $c->{ready}; w_close($c) if $ok; $ok });

# a client that logs in before the flood, and stays idle past the timeout
my $early = w_login();
ok($early->{ready}, 'a client logs in');

{
	my @silent = map { w_connect() } 1 .. 3;
	ok(@silent == 3 && !grep({ !defined } @silent), 'three connections that send nothing');
	my $refused = w_login();
	is($refused->{error}{C}, '53300',
		'with them, max_client_conn = 3 is full: a client is refused (53300)')
	  or diag(explain($refused->{error}));

	my @ends = map { until_closed($_, 30) } @silent;
	is_deeply(\@ends, [ ['EOF'], ['EOF'], ['EOF'] ],
		'the agent closes them, without a word (as PostgreSQL before a startup packet)');

	my $late = w_login();
	ok($late->{ready}, 'then a client logs in again');
	w_close($late) if $late->{ready};
}

ok(defined w_query($early, 'SELECT 1')->{status},
	'a client logged in before the timeout is not touched by it');

# a SCRAM exchange left after the server's first message
{
	my $c = w_connect();
	w_send($c, startup_packet(user => 'app', database => 'app'));
	my ($type, $body) = w_msg($c);
	is($type . unpack('N', $body), 'R10', 'SCRAM: AuthenticationSASL');
	my $first = 'n,,n=,r=halfdonehalfdonehalfdone';
	w_send($c, fmsg('p', "SCRAM-SHA-256\0" . pack('N', length $first) . $first));
	($type, $body) = w_msg($c);
	is($type . unpack('N', $body), 'R11', 'SASLContinue, then the client says nothing more');
	my $got = until_closed($c, 30);
	my $e = ref $got->[0] ? $got->[0] : {};
	is($e->{S} // '', 'FATAL', 'the half-done exchange ends in FATAL') or diag(explain($got));
	is($e->{C} // '', '57014', 'SQLSTATE 57014');
	is($e->{M} // '', 'canceling authentication due to timeout', 'in PostgreSQL\'s words');
	is($got->[-1], 'EOF', 'and the connection is closed');
}

# an SSLRequest answered, then nothing
{
	my $c = w_connect();
	w_send($c, ssl_request());
	is(w_bytes($c, 1, 10), 'N', 'SSLRequest answered N');
	is_deeply(until_closed($c, 30), ['EOF'], 'then silence: closed without a word');
}

# half a startup packet
{
	my $c = w_connect();
	w_send($c, substr(startup_packet(user => 'app', database => 'app'), 0, 10));
	is_deeply(until_closed($c, 30), ['EOF'], 'half a startup packet: closed');
}

# authenticated, but the pool's first origin connection never logs in
{
	# (within 30 s: server_connect_timeout is 60 s)
	my $c = w_login(db => 'blackhole', timeout => 30);
	is_deeply($c->{auth}, [ 10, 11, 12, 0 ], 'blackhole: the password exchange succeeds');
	is($c->{error}{C} // '', '57014',
		'waiting for the origin longer than client_login_timeout: 57014')
	  or diag(explain($c->{error}));
	is($c->{error}{M} // '', 'canceling authentication due to timeout', 'same message');
}

like(slurp_from($log), qr/canceling authentication due to timeout \(SQLSTATE 57014\)/,
	'the log says why');
w_close($early);

{
	# (no config: the CLI would refuse the file too)
	mkdir "$tmp/bad_timeout";
	my $bad = "$tmp/bad_timeout/hyperdrive.ini";
	write_file($bad, "[agent]\nlisten_port = $aport\nstate_dir = $tmp/bad_timeout/state\n"
		  . "client_login_timeout = soon\n");
	my ($rc, $out) = hd_agent_refuses(ini => $bad);
	ok(defined $rc && $rc != 0, 'client_login_timeout = soon: refused');
	like($out, qr/client_login_timeout must be a time from 0 to 720h .*not "soon"/,
		'saying what it must be') or diag($out);
}

# ===========================================================================
# The log: what clients send is escaped
# ===========================================================================
{
	my $pos = -s $log;
	my $evil_user = "evil\nFAKE [hyperdrive] LOG: x\x1b[31mred";
	my $c = w_login(user => $evil_user, db => 'app',
		params => { application_name => "app\n\x1b[0mname" });
	ok($c->{error}, 'a user name with a newline and an escape sequence is refused');
	my $d = w_login(db => "db\r\nFAKE\x1b]0;title\x07x");
	is($d->{error}{C} // '', '3D000', 'so is an unknown database name with control characters');
	wait_for(sub { slurp_from($log, $pos) =~ /does not exist/ });
	my $text = slurp_from($log, $pos);
	unlike($text, qr/[\x00-\x09\x0b-\x1f\x7f]/, 'no raw control characters in the log');
	my @forged = grep { !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[hyperdrive\] (?:ERROR|WARNING|LOG|DEBUG): / }
	  split /\n/, $text;
	is_deeply(\@forged, [], 'every line is a line the agent began');
	like($text, qr/evil\\nFAKE \[hyperdrive\] LOG: x\\x1b\[31mred/,
		'the user name is there, escaped');
	like($text, qr/db\\r\\nFAKE\\x1b\]0;title\\x07x/, 'so is the database name');
}

$agent->signal('TERM');
$agent->finish;

# ===========================================================================
# Open files
# ===========================================================================

# the hard limit is too low for max_client_conn: refuse to start, saying why
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $ag2 = agent_setup('nofile_refuse', $port, "$logdir/027_nofile_refuse.log",
		"max_client_conn = 1000\n");
	my $ini2 = $ag2->{ini};
	my ($rc, $out) = hd_agent_refuses(ini => $ini2, wrapper => [ 'prlimit', '--nofile=256:256', '--' ]);
	ok(defined $rc && $rc != 0, 'max_client_conn = 1000 under a hard limit of 256: refused')
	  or diag($out);
	like($out, qr/max_client_conn = 1000 needs up to \d+ open files/, 'saying what it needs');
	like($out, qr/hard limit on open files \(RLIMIT_NOFILE\) is 256/, 'and the limit');
	my ($most) = $out =~ /lower max_client_conn to (\d+) or less/;
	ok($most, 'and what to lower max_client_conn to') or diag($out);

	# what it says is enough
	write_file($ini2, slurp_file($ini2) =~ s/max_client_conn = 1000/max_client_conn = $most/r);
	my $a2 = $ag2->start(wrapper => [ 'prlimit', '--nofile=256:256', '--' ]);
	ok($a2, "with max_client_conn = $most it starts under the same limit");
	if ($a2)
	{
		$a2->signal('TERM');
		$a2->finish;
	}
}

# a soft limit below the need is raised (up to the hard limit)
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $log3 = "$logdir/027_nofile_raise.log";
	my $ag3 = agent_setup('nofile_raise', $port, $log3, '');
	my $ini3 = $ag3->{ini};
	my $a3 = $ag3->start(wrapper => [ 'prlimit', '--nofile=100:4096', '--' ]);
	ok($a3, 'the agent starts with a soft limit of 100 (hard 4096)') or BAIL_OUT('no agent');
	my $soft = sub {
		return (slurp_file('/proc/' . $a3->pid . '/limits') =~ /^Max open files\s+(\d+)/m)[0];
	};
	cmp_ok($soft->(), '>', 1000 + 20, 'its soft limit is raised above max_client_conn (1000) '
		  . 'and the origin connections');
	cmp_ok($soft->(), '<=', 4096, 'not above the hard limit');

	# on reload: raised again, or the settings refused
	my $reload = sub {
		my ($max) = @_;
		my $pos = -s $log3;
		write_file($ini3, slurp_file($ini3) =~ s/^max_client_conn = \d+\n//mr
			  . "max_client_conn = $max\n");
		$a3->signal('HUP');
		wait_for(sub { slurp_from($log3, $pos) =~ /settings reloaded|reload failed/ });
		return slurp_from($log3, $pos);
	};
	like($reload->(3000), qr/settings reloaded/, 'reloaded with max_client_conn = 3000');
	cmp_ok($soft->(), '>', 3000 + 20, 'the soft limit is raised with it');
	my $before = $soft->();
	like($reload->(5000), qr/reload failed, keeping the previous settings: max_client_conn = 5000 needs up to \d+ open files.*hard limit on open files \(RLIMIT_NOFILE\) is 4096: lower max_client_conn to \d+ or less/,
		'max_client_conn = 5000 over the hard limit: the reload is refused, saying why');
	is($soft->(), $before, 'and the limit stays');
	$a3->signal('TERM');
	$a3->finish;
}

# out of descriptors: no spinning, no flood of log lines; accepting again later
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $log4 = "$logdir/027_nofile_flood.log";
	my $a4 = agent_setup('nofile_flood', $port, $log4, "max_client_conn = 100\nclient_login_timeout = 0\n")
	  ->start(wrapper => [ 'prlimit', '--nofile=256:256', '--' ]);
	ok($a4, 'an agent under an open files limit of 256') or BAIL_OUT('no agent');
	my $pid = $a4->pid;
	$PgWire::PORT = $port;
	my $held = w_login();
	ok($held->{ready} && defined w_query($held, 'SELECT 1')->{status}, 'a client logged in');

	my $pos = -s $log4;
	my @flood = grep { defined } map { w_connect() } 1 .. 400;
	cmp_ok(scalar @flood, '>=', 300, 'then 400 connections that send nothing (past the limit)');
	ok(wait_for(sub { slurp_from($log4, $pos) =~ /accept\(\) failed for clients: Too many open files/ }, 30),
		'the agent runs out of descriptors and says so');

	my $cpu = sub {
		my @f = split ' ', (slurp_file("/proc/$pid/stat") =~ s/^.*\) //sr);
		return ($f[11] + $f[12]) / 100;	# utime + stime, in clock ticks (USER_HZ)
	};
	my ($c0, $t0) = ($cpu->(), time);
	sleep 3;			# the window over which CPU time is measured
	my $used = $cpu->() - $c0;
	my $wall = time - $t0;
	cmp_ok($used, '<', $wall / 3, sprintf('meanwhile it does not spin (%.2f s of CPU in %.1f s)',
		$used, $wall));
	my $lines = log_lines_from($log4, $pos);
	cmp_ok($lines, '<', 20, "nor flood its log ($lines lines)");

	my $r = w_query($held, 'SELECT 41 + 1');
	is($r->{rows}[0][0], '42', 'its logged-in client is served all along');

	close $_->{sock} for @flood;
	@flood = ();
	my $new = wait_for(sub { my $c = w_login(timeout => 5); $c->{ready} ? $c : undef }, 30);
	ok($new, 'once the connections are gone, a new client logs in');
	ok(wait_for(sub { slurp_from($log4, $pos) =~ /accepting clients again/ }),
		'and the log says it accepts again');
	w_close($new) if $new;
	w_close($held);
	$a4->signal('TERM');
	$a4->finish;
	is($a4->result(0), 0, 'the agent exits cleanly');
}

$node->stop;
done_testing();
