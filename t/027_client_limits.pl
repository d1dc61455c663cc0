# What one client (or many) cannot take from the others: the log (control
# characters in what clients send).
#
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

my $aport = PostgreSQL::Test::Cluster::get_free_port();
my $ini = agent_setup('login', $aport, '');
my $log = "$logdir/027_client_limits_agent.log";
my $agent = hd_start_agent(ini => $ini, log => $log, port => $aport);
ok($agent, 'the agent starts') or BAIL_OUT('no agent');
$PgWire::PORT = $aport;
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app');

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
