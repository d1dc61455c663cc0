# Real MySQL clients, unchanged, through the agent's MySQL listener: mysql2,
# mysql and Drizzle over mysql2 (tests/mysql_drivers/*.test.mjs, run with
# node --test), PyMySQL and MySQLdb (tests/mysql_drivers/python_drivers.py,
# run with /usr/bin/python3), the mariadb command-line client
# (tests/mysql_drivers/cli.sql) and mysqlslap.
#
# A throwaway MariaDB (t/MariaDB.pm; user app, databases app and app2) and
# one agent with two MySQL configs in front of it, both with
# origin_connection_limit 2: app_tx (transaction pooling) and app_session
# (session pooling). Each driver file runs three times: directly on the
# origin (a control run: a failure there is the test's own), through app_tx
# and through app_session; every scenario in the files also runs on the
# origin directly and compares the results. The mariadb client runs cli.sql
# through both configs and directly: the outputs must be the same.
# mysqlslap runs 10 clients through a second agent whose only MySQL config
# (slap) has an origin limit of 2: mysqlslap's first connection names no
# database, which only an agent with a single MySQL config serves.
#
# mysqlslap runs its own statements (--query), not --auto-generate-sql:
# that mode makes its first connection CREATE SCHEMA (failing if it exists)
# and the others connect naming that schema, which through the agent is a
# config's name whose origin database must exist before any client logs in;
# the two cannot both hold.
#
# Skipped (only) when the agent does not know mysql_listen_port yet, and
# when node is not installed. The origin runs with max_allowed_packet 64M
# (mysql2.test.mjs sends a 20 MB BLOB, 40 MB as an escaped literal) and
# max_prepared_stmt_count 1000 (mysql2.test.mjs prepares 1200 distinct
# statements, of which its clients keep 120 open: statements the clients
# closed must not pile up on the origin connections). The
# agent runs with log_level = debug; its log of the part that failed is
# shown with the failure.
#
# Needs agent/hyperdrive (make agent), MariaDB (mariadb-server,
# mariadb-client), python3-pymysql, python3-mysqldb, node (18 or later) and,
# unless tests/mysql_drivers/node_modules exists, npm and the npm registry.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use MariaDB;

my $src = File::Spec->rel2abs(dirname(__FILE__) . '/../tests/mysql_drivers');
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('mysql_drivers'));

# ---------------------------------------------------------------------------
# Whether the agent has a MySQL listener at all: its settings check names
# mysql_listen_port as unknown until it does.
{
	my $ini = "$tmp/probe.ini";
	write_file($ini, "[agent]\nlisten_addr = 127.0.0.1\nlisten_port = 1\nstate_dir = $tmp/probe\n"
		  . "mysql_listen_port = 2\n");
	my ($out, $err) = ('', '');
	IPC::Run::run([ $HD, 'check', '-c', $ini ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(30));
	plan skip_all => 'the agent has no MySQL listener yet (unknown setting "mysql_listen_port")'
	  if "$out$err" =~ /unknown setting "mysql_listen_port"/;
}

my $node_bin = hd_which('node');
plan skip_all => 'node is not installed (Debian: apt-get install nodejs npm; '
  . 'scripts/test installs them)'
  unless $node_bin;

my @node_files = qw(mysql2.test.mjs mysql.test.mjs drizzle.test.mjs);
my @python_drivers = qw(pymysql MySQLdb);
my $python = '/usr/bin/python3';

my $drivers = "$tmp/drivers";
unless (hd_node_packages($src, $drivers, qw(mysql2 mysql drizzle-orm)))
{
	done_testing();
	exit;
}
for my $module (@python_drivers)
{
	my $version = `$python -c 'import $module; print(getattr($module, "__version__", "") or $module.version_info)' 2>&1`;
	ok($? == 0, "$python has $module (Debian: python3-pymysql, python3-mysqldb)") or diag($version);
	chomp $version;
	note("$module $version");
}

# ---------------------------------------------------------------------------
# The origin.
my $password = 'app-Secret-7';
my $my = MariaDB->new('origin');
$my->init(extra => [ '--max-allowed-packet=64M', '--character-set-server=utf8mb4',
		'--collation-server=utf8mb4_unicode_ci', '--max-connections=100',
		'--max-prepared-stmt-count=1000' ]);
$my->start;
my $origin_port = $my->port;
$my->sql(<<"SQL");
CREATE USER app\@'%' IDENTIFIED BY '$password';
CREATE DATABASE app;
CREATE DATABASE app2;
CREATE DATABASE slap;
GRANT ALL ON app.* TO app\@'%';
GRANT ALL ON app2.* TO app\@'%';
GRANT ALL ON slap.* TO app\@'%';
CREATE TABLE slap.slap_t (id INT AUTO_INCREMENT PRIMARY KEY, cid BIGINT NOT NULL);
SQL

# ---------------------------------------------------------------------------
# The agent, and its configs made with the CLI.
my $limit = 2;
my $origin_url = "mysql://app:$password\@127.0.0.1:$origin_port";

# An agent with a MySQL listener and the given configs ([ name, origin
# database, pool mode ]), started; checks what create prints.
sub mysql_agent
{
	my ($name, @configs) = @_;
	my $myport = PostgreSQL::Test::Cluster::get_free_port();
	my $a = hd_agent(name => $name, start => 0, settings => <<"EOF");
log_level = debug
query_wait_timeout = 60
server_login_retry = 100ms
mysql_listen_port = $myport
EOF
	$a->{myport} = $myport;
	for my $c (@configs)
	{
		my ($config, $db, $mode) = @$c;
		my $out = hd_cli($a->{ini}, "create $config (MySQL, $mode pooling)", 'create', $config,
			"--connection-string=$origin_url/$db", '--origin-connection-limit', $limit,
			'--pool-mode', $mode);
		like($out, qr{^connection string: mysql://app\@127\.0\.0\.1:$myport/$config$}m,
			"create prints the MySQL client connection string for $config");
	}
	write_file($a->{log}, '');
	$a->start(poll => 0.1)
	  or BAIL_OUT("the agent did not start:\n" . slurp_from($a->{log}, 0, 20000));
	my $up = wait_for(sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $myport, Timeout => 1) },
		30, 0.1);
	ok($up, "the agent's MySQL listener accepts on 127.0.0.1:$myport")
	  or BAIL_OUT("no MySQL listener:\n" . slurp_from($a->{log}, 0, 20000));
	return $a;
}

my $agent = mysql_agent('mysql_drivers', [ 'app_tx', 'app', 'transaction' ],
	[ 'app_session', 'app', 'session' ]);
my %config_of = (transaction => 'app_tx', session => 'app_session');

# The mariadb client, batch mode, $sql on its standard input; (exit status,
# standard output, standard error); the status is -1 if it had not ended
# after 120 s (then it is killed).
sub mariadb
{
	my ($port, $db, $sql, @opts) = @_;
	my ($out, $err) = ('', '');
	eval {
		IPC::Run::run([ 'mariadb', '--no-defaults', '--batch', '--protocol=TCP', '-h', '127.0.0.1',
				'-P', $port, '-u', 'app', "-p$password", '-D', $db, @opts ],
			'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	};
	return (-1, $out, "$err\nno result after 120s: $@") if $@;
	return ($? >> 8, $out, $err);
}

# A first query through each config: a clearer failure than a driver's.
for my $mode (sort keys %config_of)
{
	my ($rc, $out, $err) = mariadb($agent->{myport}, $config_of{$mode},
		"SELECT CURRENT_USER(), DATABASE()\n", '--skip-column-names');
	is("$rc $out", "0 app\@%\tapp\n", "the mariadb client through $config_of{$mode} reaches the origin as app")
	  or diag("mariadb: $err\nagent log:\n" . slurp_from($agent->{log}, 0, 20000));
}

# ---------------------------------------------------------------------------
# The drivers: each file directly on the origin, then through each config.
my %origin_env = (ORIGIN_HOST => '127.0.0.1', ORIGIN_PORT => $origin_port, ORIGIN_USER => 'app',
	ORIGIN_PASSWORD => $password, ORIGIN_DATABASE => 'app');
my @runs = (
	[ direct => $origin_port, 'app' ],
	[ transaction => $agent->{myport}, $config_of{transaction} ],
	[ session => $agent->{myport}, $config_of{session} ],
);
my $file_timeout = 300;
my %stuck;

# Runs @cmd (a driver's tests) with the environment for $mode; one test.
sub run_driver
{
	my ($what, $mode, $port, $db, @cmd) = @_;
	my $log_start = -s $agent->{log} // 0;
	local @ENV{ keys %origin_env } = values %origin_env;
	local $ENV{MYSQL_HOST} = '127.0.0.1';
	local $ENV{MYSQL_PORT} = $port;
	local $ENV{MYSQL_USER} = 'app';
	local $ENV{MYSQL_PASSWORD} = $password;
	local $ENV{MYSQL_DATABASE} = $db;
	local $ENV{HD_POOL_MODE} = $mode;
	local $ENV{HD_ORIGIN_LIMIT} = $limit;
	local $ENV{NO_COLOR} = '1';
	local $ENV{FORCE_COLOR} = '0';
	my $name = $mode eq 'direct' ? "$what directly on the origin" : "$what through the agent ($mode pooling)";
	# a config whose sessions stopped being answered: the next files would
	# wait as long each
	return fail("$name: not run, a file before it had no result after ${file_timeout}s")
	  if $stuck{$mode};
	$stuck{$mode} = 1
	  if hd_driver_run(name => $name, cmd => \@cmd, dir => $drivers, timeout => $file_timeout,
		about => "MYSQL_* for $mode", log => $mode eq 'direct' ? undef : $agent->{log},
		log_start => $log_start) < 0;
	ok($agent->alive, "the agent is still running after $what ($mode)")
	  or BAIL_OUT("the agent exited:\n" . slurp_from($agent->{log}, $log_start, 20000));
	return;
}

for my $run (@runs)
{
	my ($mode, $port, $db) = @$run;
	run_driver($_, $mode, $port, $db, $node_bin, '--test', '--test-reporter=spec', $_) for @node_files;
	run_driver("python_drivers.py $_", $mode, $port, $db, $python, "$src/python_drivers.py", $_)
	  for @python_drivers;
}

# ---------------------------------------------------------------------------
# The mariadb client: the same script, the same output.
my $cli_sql = slurp_from("$src/cli.sql");
my ($rc, $direct_out, $direct_err) = mariadb($origin_port, 'app', $cli_sql, '--force');
like($direct_out, qr/^k1\n10\nname\tp\n/m, 'cli.sql directly: the procedure\'s two result sets');
like($direct_out, qr/^name: three 😀$/m, 'cli.sql directly: \\G output');
like($direct_err, qr/^ERROR 1146 \(42S02\) at line \d+: Table 'app2\.no_such_table' doesn't exist\n.*^ERROR 1062 \(23000\) at line \d+: Duplicate entry '3'/ms,
	'cli.sql directly: the errors (--force goes on after them)');
for my $mode (sort keys %config_of)
{
	my $log_start = -s $agent->{log} // 0;
	my ($arc, $out, $err) = mariadb($agent->{myport}, $config_of{$mode}, $cli_sql, '--force');
	my $same = is($out, $direct_out, "cli.sql through $config_of{$mode}: the same output as on the origin");
	$same = is($err, $direct_err, "cli.sql through $config_of{$mode}: the same errors") && $same;
	$same = is($arc, $rc, "cli.sql through $config_of{$mode}: the same exit status") && $same;
	diag("agent log:\n" . slurp_from($agent->{log}, $log_start, 40000)) unless $same;
}

# ---------------------------------------------------------------------------
# mysqlslap: 10 clients, an origin limit of 2, through a config that is the
# agent's only MySQL one (mysqlslap's first connection names no database).
my $slap = mysql_agent('mysqlslap', [ 'slap', 'slap', 'transaction' ]);
{
	my ($iterations, $queries) = (3, 400);
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ 'mysqlslap', '--no-defaults', '--protocol=TCP', '-h', '127.0.0.1',
				'-P', $slap->{myport}, '-u', 'app', "-p$password", '--create-schema=slap',
				'--concurrency=10', "--iterations=$iterations", "--number-of-queries=$queries",
				'--delimiter=;',
				'--query=INSERT INTO slap_t (cid) VALUES (CONNECTION_ID());'
				  . 'SELECT COUNT(*) FROM slap_t WHERE cid = CONNECTION_ID()' ],
			'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	};
	$err .= "\nno result after 300s: $@" if $@;
	ok($ok, 'mysqlslap, 10 clients through a config with an origin limit of 2')
	  or diag("mysqlslap: $out$err\nagent log:\n" . slurp_from($slap->{log}, 0, 40000));
	like($out, qr/Number of clients running queries: 10/, 'mysqlslap ran its 10 clients');
	is($my->sql('SELECT COUNT(*) FROM slap.slap_t'), $iterations * $queries / 2 . "\n",
		'every INSERT of mysqlslap reached the origin');
	my $threads = $my->sql('SELECT COUNT(DISTINCT cid) FROM slap.slap_t');
	chomp $threads;
	ok($threads >= 1 && $threads <= $limit, "on at most $limit origin connections (saw $threads)");
	ok($slap->alive, 'the agent is still running after mysqlslap');
}

# ---------------------------------------------------------------------------
# SIGTERM: the agents drain and exit cleanly.
for my $a ($agent, $slap)
{
	$a->signal('TERM');
	my $reaped = $a->exited(10);
	ok($reaped, "the agent ($a->{log}) exits on SIGTERM");
	is($a->status, 0, 'with status 0') if $reaped;
	unlike(slurp_from($a->{log}, 0, 1 << 24), qr/\Q$password\E/, 'its log holds no password');
}

$my->stop;
done_testing();
