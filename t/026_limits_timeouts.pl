# The agent's limits and timeouts against a real origin: max_client_conn,
# client_idle_timeout, server_idle_timeout and server_lifetime, each with
# PostgreSQL's SQLSTATE where a client is refused or closed.
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

my $hd = $HD;
my $PW = 'limits-pw-26';

my $node = start_origin('origin');
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'; CREATE DATABASE app OWNER app");

my $agent = hd_agent(name => '026_limits_timeouts', settings => "log_level = info\n", start => 0);
my ($ini, $log, $aport) = @$agent{qw(ini log port)};
$agent->write_settings("max_client_conn = 3\n");
IPC::Run::run([ $hd, 'create', 'app', "--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '-c', $ini ], '>', \my $cout, '2>', \my $cerr);
is($?, 0, 'config created') or diag($cerr);

ok($agent->start(wait => 10, poll => 0.1), 'the agent listens');

sub reload
{
	my ($extra, $wait_for) = @_;
	my $pos = -s $log;
	$agent->write_settings($extra);
	$agent->signal('HUP');
	my $deadline = time + 5;
	while (time < $deadline)
	{
		return 1 if slurp_file($log, $pos) =~ /settings reloaded/;
		sleep 0.1;
	}
	return 0;
}

# a psql session held open, reading commands from a pipe
sub open_session
{
	my ($in, $out, $err) = ('', '', '');
	local $ENV{PGPASSWORD} = $PW;
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport,
			'-U', 'app', '-d', 'app' ], '<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return { h => $h, in => \$in, out => \$out, err => \$err };
}

sub run_in
{
	my ($s, $sql, $re) = @_;
	${ $s->{in} } .= "$sql\n";
	my $deadline = time + 10;
	while (time < $deadline)
	{
		$s->{h}->pump_nb;
		return 1 if ${ $s->{out} } =~ $re || ${ $s->{err} } =~ $re;
		sleep 0.05;
	}
	return 0;
}

sub psql_once
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $PW;
	IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
			'-d', 'app', '-c', $sql ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	return ($out, $err);
}

sub agent_backends
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND client_addr IS NOT NULL});
}

# --- max_client_conn
my @held = map { open_session() } 1 .. 3;
ok(run_in($_, 'SELECT 41 + 1;', qr/^42$/m), 'a client up to max_client_conn works') for @held;
my ($out, $err) = psql_once('SELECT 1');
like($err, qr/sorry, too many clients already \(max_client_conn = 3\)/,
	'one more client: FATAL 53300 too many clients');
run_in($held[0], '\q', qr/^$/);
$held[0]->{h}->finish;
my $ok = 0;
for (1 .. 50)
{
	($out, $err) = psql_once('SELECT 7');
	last if ($ok = $out eq "7\n");
	sleep 0.1;
}
ok($ok, 'once one leaves, a new client gets in');
$_->{h}->kill_kill for @held[ 1 .. 2 ];

# --- client_idle_timeout: an idle client is closed with 57P05
ok(reload("client_idle_timeout = 1\n"), 'reloaded with client_idle_timeout = 1s');
my $idle = open_session();
ok(run_in($idle, 'SELECT 1;', qr/^1$/m), 'the client works');
sleep 2.5;
ok(run_in($idle, 'SELECT 2;', qr/terminating connection due to idle timeout|connection.*closed|server closed/),
	'after 2.5 s idle it was closed') or diag(${ $idle->{err} });
like(slurp_file($log), qr/idle timeout \(client_idle_timeout\) \(SQLSTATE 57P05\)/,
	'with SQLSTATE 57P05 in the log');
$idle->{h}->kill_kill;

# --- server_idle_timeout: idle origin connections are closed
ok(reload("server_idle_timeout = 1\n"), 'reloaded with server_idle_timeout = 1s');
psql_once('SELECT 1');
my $gone = 0;
for (1 .. 50)
{
	last if ($gone = agent_backends() eq '0');
	sleep 0.1;
}
ok($gone, 'the idle origin connection was closed within 5 s');
($out, $err) = psql_once('SELECT 3');
is($out, "3\n", 'and a new one is made when needed');

# --- server_lifetime: an old connection is replaced when released
ok(reload("server_lifetime = 1\n"), 'reloaded with server_lifetime = 1s');
my $s = open_session();
ok(run_in($s, 'SELECT pg_backend_pid();', qr/^\d+$/m), 'a client holds a session');
my ($pid1) = ${ $s->{out} } =~ /^(\d+)$/m;
# the lifetime is checked when a connection is released and once a second
sleep 2.5;
${ $s->{out} } = '';
ok(run_in($s, 'SELECT pg_backend_pid();', qr/^\d+$/m), 'after the lifetime it still works');
my ($pid2) = ${ $s->{out} } =~ /^(\d+)$/m;
isnt($pid2, $pid1, 'on a new origin connection (the old one was closed)');
like(slurp_file($log), qr/server_lifetime reached/, 'the log says why');
run_in($s, '\q', qr/^$/);
$s->{h}->finish;

$agent->signal('TERM');
$agent->finish;
is($agent->result(0), 0, 'the agent exits cleanly');
$node->stop;
done_testing();
