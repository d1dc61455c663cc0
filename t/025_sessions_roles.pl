# The agent with session state and roles, end to end against a real origin:
#  - clients logging in as roles other than the config's user (their secret
#    looked up with hyperdrive.get_role_secret(), the origin login made with
#    the keys of the client's own SCRAM exchange);
#  - session settings (startup parameters, SET/RESET) carried from one origin
#    connection to the next under transaction pooling, and never leaking to
#    other clients sharing the connection;
#  - statements that pin a client to its origin connection;
#  - a logical replication stream through the agent (replication=database).
#
# Needs agent/hyperdrive (make agent) and the extension installed.
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

my $PW = 'app-Secret-25';
my $BOBPW = 'bob-Secret-25';

# ---------------------------------------------------------------------------
# The origin: SCRAM for everyone over TCP, the extension, a few roles.
my $node = start_origin('origin', logical => 1);
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW';
CREATE ROLE bob LOGIN PASSWORD '$BOBPW';
CREATE ROLE boss LOGIN SUPERUSER PASSWORD 'boss-pw';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', <<'SQL');
CREATE EXTENSION hyperdrive;
CREATE SCHEMA s2 AUTHORIZATION app;
CREATE TABLE s2.marker (v text);
INSERT INTO s2.marker VALUES ('in s2');
GRANT USAGE ON SCHEMA s2 TO bob;
GRANT SELECT ON s2.marker TO bob;
SQL

# ---------------------------------------------------------------------------
# The agent.
my $agent = hd_agent(name => '025_sessions_roles',
	settings => "log_level = info\nquery_wait_timeout = 20\n",
	configs => [ [ 'create app (limit 1)', 'app',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--origin-connection-limit', '1' ] ],
	wait => 10, poll => 0.1);
ok($agent, 'the agent listens');
my ($tmp, $ini, $log, $aport) = @$agent{qw(dir ini log port)};

sub hdcli { my ($name, @args) = @_; return hd_cli($ini, $name, @args); }

# psql through the agent; returns (exit status, stdout, stderr)
sub agent_psql
{
	my (%o) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	local $ENV{PGOPTIONS} = $o{options} if defined $o{options};
	local $ENV{PGAPPNAME} = $o{appname} if defined $o{appname};
	my @cmd = ('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
		'-p', $aport, '-U', $o{user} // 'app', '-d', $o{dbname} // 'app');
	push @cmd, map { ('-c', $_) } @{ $o{sql} } if $o{sql};
	push @cmd, ('-f', $o{file}) if $o{file};
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# ---------------------------------------------------------------------------
# Roles other than the config's user.
# Without EXECUTE on the lookup for the config's user, other roles cannot log in.
my ($rc, $out, $err) = agent_psql(user => 'bob', password => $BOBPW, sql => ['SELECT 1']);
like($err, qr/password authentication failed for user "bob"/,
	'without the grant: 28P01 for the client');
like(slurp_file($log), qr/role lookup on the origin failed: .*permission denied for function get_role_secret/,
	'and the log says what to grant');

$node->safe_psql('app', 'GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO app');
($rc, $out, $err) = agent_psql(user => 'bob', password => $BOBPW,
	sql => ['SELECT current_user, session_user', 'SELECT v FROM s2.marker']);
is($rc, 0, 'bob logs in through the agent with his own password') or diag($err);
is($out, "bob|bob\nin s2\n", 'the origin session is bob\'s (SCRAM keys passed through)');

($rc, $out, $err) = agent_psql(user => 'bob', password => 'wrong', sql => ['SELECT 1']);
like($err, qr/password authentication failed for user "bob"/, 'a wrong password: 28P01');
($rc, $out, $err) = agent_psql(user => 'nobody', password => 'x', sql => ['SELECT 1']);
like($err, qr/password authentication failed for user "nobody"/,
	'an unknown role: the same 28P01');
($rc, $out, $err) = agent_psql(user => 'boss', password => 'boss-pw', sql => ['SELECT 1']);
like($err, qr/password authentication failed for user "boss"/,
	'a superuser is not looked up: 28P01');

# A password change on the origin: the agent follows (it looks up every login).
$node->safe_psql('postgres', "ALTER ROLE bob PASSWORD 'bob-new'");
($rc, $out, $err) = agent_psql(user => 'bob', password => 'bob-new', sql => ['SELECT 1']);
is($rc, 0, 'bob\'s new password works at once') or diag($err);
($rc, $out, $err) = agent_psql(user => 'bob', password => $BOBPW, sql => ['SELECT 1']);
like($err, qr/password authentication failed/, 'the old one no longer does');

# ---------------------------------------------------------------------------
# Session settings under transaction pooling, one origin connection shared.
my $a_sql = "$tmp/a.sql";
my $b_sql = "$tmp/b.sql";
{
	open my $fh, '>', $a_sql or die $!;
	print $fh "SET search_path = s2, public;\nSET statement_timeout = '4321ms';\n";
	print $fh "SELECT pg_sleep(0.02); SHOW search_path;\nSHOW statement_timeout;\nSHOW work_mem;\nSHOW application_name;\n"
	  for 1 .. 30;
	print $fh "RESET search_path;\nSHOW search_path;\n";
	close $fh;
	open $fh, '>', $b_sql or die $!;
	print $fh "SELECT pg_sleep(0.02); SHOW search_path;\nSHOW statement_timeout;\nSHOW work_mem;\n"
	  for 1 .. 30;
	close $fh;
}
my ($a_out, $a_err, $b_out, $b_err) = ('', '', '', '');
{
	local $ENV{PGPASSWORD} = $PW;
	local $ENV{PGOPTIONS} = '-c work_mem=7MB';
	local $ENV{PGAPPNAME} = 'client-a';
	my $ha = IPC::Run::start([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $aport,
			'-U', 'app', '-d', 'app', '-f', $a_sql ], '<', \undef, '>', \$a_out, '2>', \$a_err,
		IPC::Run::timeout(60));
	local $ENV{PGOPTIONS} = '';
	local $ENV{PGAPPNAME} = 'client-b';
	my $hb = IPC::Run::start([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $aport,
			'-U', 'app', '-d', 'app', '-f', $b_sql ], '<', \undef, '>', \$b_out, '2>', \$b_err,
		IPC::Run::timeout(60));
	$ha->finish;
	$hb->finish;
}
is($a_err, '', 'client A ran without errors');
is($b_err, '', 'client B ran without errors');
my @a = grep { $_ ne '' } split /\n/, $a_out;
my @b = grep { $_ ne '' } split /\n/, $b_out;
is(scalar(grep { $_ eq 's2, public' } @a), 30, 'A\'s SET search_path holds in all 30 transactions');
is(scalar(grep { $_ eq '4321ms' } @a), 30, 'A\'s statement_timeout holds in all of them');
is(scalar(grep { $_ eq '7MB' } @a), 30, 'A\'s startup option -c work_mem=7MB holds');
is(scalar(grep { $_ eq 'client-a' } @a), 30, 'A\'s application_name holds');
is($a[-1], '"$user", public', 'A\'s RESET search_path is carried too');
is(scalar(grep { $_ eq '"$user", public' } @b), 30, 'B never sees A\'s search_path');
is(scalar(grep { $_ eq '0' } @b), 30, 'B never sees A\'s statement_timeout');
is(scalar(grep { $_ eq '4MB' } @b), 30, 'B never sees A\'s work_mem');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND client_addr IS NOT NULL
		  AND application_name NOT IN ('hyperdrive control', 'hyperdrive freshness probe')
		  AND backend_type = 'client backend'}),
	'1', 'both shared one origin connection (limit 1; the lookup\'s control connection and the '
	  . 'cache\'s freshness probe aside)');

# A SET the agent does not carry pins; so does a SET inside a transaction block.
my $pins_before = () = slurp_file($log) =~ /is pinned to its origin connection/g;
($rc, $out, $err) = agent_psql(sql => [ 'SET geqo = off', 'SHOW geqo', 'SHOW geqo' ]);
is($out, "off\noff\n", 'an untracked SET holds for a pinned client');
like(slurp_file($log), qr/pinned to its origin connection: SET of a setting the agent does not carry/,
	'and the pin is logged with the reason');
($rc, $out, $err) = agent_psql(sql => [ 'BEGIN', 'SET search_path = s2', 'COMMIT', 'SHOW search_path' ]);
is($out, "s2\n", 'a SET inside a transaction block holds (the client is pinned)');
like(slurp_file($log), qr/pinned to its origin connection: SET inside a transaction block/,
	'pinned: SET inside a transaction block');
($rc, $out, $err) = agent_psql(sql => [ 'SHOW geqo', 'SHOW search_path' ]);
is($out, "on\n\"\$user\", public\n",
	'the next client gets a clean connection (a pinned one is closed, not reused)');
($rc, $out, $err) = agent_psql(sql => [ 'CREATE TEMP TABLE tt AS SELECT 1 AS x', 'SELECT x FROM tt' ]);
is($out, "1\n", 'a temporary table stays usable: its client is pinned');
my $pins_after = () = slurp_file($log) =~ /is pinned to its origin connection/g;
is($pins_after - $pins_before, 3, 'one pin log line per pinned client');

# A SET of a setting that does not exist fails at the origin, and is not carried.
($rc, $out, $err) = agent_psql(sql => [ 'SET search_path = s2', 'SHOW search_path' ],
	options => '-c no_such_setting.x=1 -c statement_timeout=bogus');
like($err, qr/invalid value for parameter "statement_timeout"/,
	'a startup option the origin refuses is reported to the client');

# ---------------------------------------------------------------------------
# A logical replication stream through the agent (its own origin connection).
hdcli('raise the limit for the stream', 'update', 'app', '--origin-connection-limit', '3');
sleep 1.5;
$node->safe_psql('app', "SELECT pg_create_logical_replication_slot('through_agent', 'hyperdrive')");
$node->safe_psql('app', 'CREATE TABLE streamed (id int PRIMARY KEY); INSERT INTO streamed VALUES (7)');
my $end = $node->safe_psql('app', 'SELECT pg_current_wal_lsn()');
my ($s_out, $s_err) = ('', '');
{
	local $ENV{PGPASSWORD} = $PW;
	IPC::Run::run([ 'pg_recvlogical', '-h', '127.0.0.1', '-p', $aport, '-U', 'app', '-d', 'app',
			'--slot', 'through_agent', '--start', '--endpos', $end, '-o', 'include-timestamp=0',
			'-f', '-' ], '<', \undef, '>', \$s_out, '2>', \$s_err, IPC::Run::timeout(30));
}
like($s_out, qr/relation public\.streamed oid \d+ changes insert key \(id\) rows \('7'\)/,
	'pg_recvlogical through the agent receives the change stream') or diag($s_err);
like(slurp_file($log), qr/replication connection \(replication=database\) passed through/,
	'the agent logged the pass-through');

$agent->signal('TERM');
$agent->finish;
is($agent->result(0), 0, 'the agent drains and exits cleanly');
$node->stop;
done_testing();
