# What one client (or many) cannot take from the others: time before login
# (client_login_timeout), and the log (control characters in what clients
# send).
#
#   - client_login_timeout: silent connections, a half-done SCRAM exchange,
#     an SSLRequest and nothing after, half a startup packet, and a client
#     waiting for its pool's first origin connection are closed; clients
#     that fill max_client_conn without logging in lock nobody out for good;
#     a logged-in client is not touched.
#   - the log: user and database names and application_name with newlines
#     and escape sequences are escaped, never forge a line.
#
# Needs agent/hyperdrive (make agent).
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

# An agent's settings file and state directory under $tmp/NAME, with config
# app (and more configs: name => port of their origin).
sub agent_setup
{
	my ($name, $port, $settings, %configs) = @_;
	my $dir = "$tmp/$name";
	mkdir $dir;
	write_file("$dir/hyperdrive.ini", "[agent]\nlisten_addr = 127.0.0.1\nlisten_port = $port\n"
		  . "state_dir = $dir/state\nlog_level = info\n$settings");
	$configs{app} = $oport;
	for my $c (sort keys %configs)
	{
		hd_cli("$dir/hyperdrive.ini", "$name: create $c", 'create', $c,
			"--connection-string=postgresql://app:$PW\@127.0.0.1:$configs{$c}/app",
			'--sslmode', 'disable', '--caching-disabled');
	}
	return "$dir/hyperdrive.ini";
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
my $ini = agent_setup('login', $aport,
	"max_client_conn = 3\nclient_login_timeout = 2\nserver_connect_timeout = 60\n",
	blackhole => $blackhole->sockport);
my $log = "$logdir/027_client_limits_agent.log";
my $agent = hd_start_agent(ini => $ini, log => $log, port => $aport);
ok($agent, 'the agent starts with client_login_timeout = 2') or BAIL_OUT('no agent');
$PgWire::PORT = $aport;
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app');

# the connection of hd_start_agent's probe may still count: wait until it is gone
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
	w_send($c, pack('N N', 8, 80877103));
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

$node->stop;
done_testing();
