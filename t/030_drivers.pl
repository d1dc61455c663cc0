# Real drivers, unchanged, through the agent: Postgres.js, node-postgres (pg)
# and Drizzle ORM over Postgres.js (tests/drivers/*.test.mjs, run with
# node --test).
#
# An origin (SCRAM over TCP, role app, database app, wal_level = logical and
# the extension) and one agent with three configs in front of it, all with
# origin_connection_limit 2: app_tx (transaction pooling, caching off),
# app_session (session pooling) and app_cache (transaction pooling with the
# result cache and its change stream). Each driver file runs four times:
# directly on the origin (a control run: a failure there is the test's own),
# through app_tx, app_session and app_cache. Every scenario in the files also
# runs on the origin directly and compares the results, so through app_cache
# every cached read must equal the origin's, after the scenarios' own writes
# too; the drivers' statements must also be served from the cache (hits in
# SHOW CACHE), in the simple and the extended protocol.
#
# Needs node (18 or later) and, unless tests/drivers/node_modules exists,
# npm and the npm registry: the packages are installed with `npm ci` from
# tests/drivers/package-lock.json into a copy under tmp_check, never into the
# source tree. Skipped when node is not installed. The agent runs with
# log_level = debug; its log (tmp_check/log/030_drivers_agent.log) of the part
# that failed is shown with the failure.
#
# Needs agent/hyperdrive (make agent). Run with make tempcheck-tap, or
#   prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl t/030_drivers.pl
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use lib dirname(__FILE__);
use HdTest;

my $agent = $HD;
my $drivers_src =
  File::Spec->rel2abs(dirname(__FILE__) . '/../tests/drivers');

my $node_bin = hd_which('node');
plan skip_all => 'node is not installed (Debian: apt-get install nodejs npm; '
  . 'scripts/test installs them)'
  unless $node_bin;

my @driver_files = qw(postgresjs.test.mjs pg.test.mjs drizzle.test.mjs);
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('drivers'));

# ---------------------------------------------------------------------------
# The driver packages: a copy of tests/drivers with its own node_modules.
my $drivers = "$tmp/drivers";
unless (hd_node_packages($drivers_src, $drivers, qw(postgres pg drizzle-orm)))
{
	done_testing();
	exit;
}

# ---------------------------------------------------------------------------
# The origin: SCRAM for TCP connections, trust on the test's Unix socket.
my $password = 'app-Secret-7';
my $node = start_origin('origin', logical => 1, init_extra => [ '--encoding=UTF8', '--locale=C' ],
	conf => "max_connections = 60\nautovacuum = off\n");
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN REPLICATION PASSWORD '$password';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', 'CREATE EXTENSION hyperdrive');
my $origin_port = $node->port;
my $origin_url = "postgresql://app:$password\@127.0.0.1:$origin_port/app";

# ---------------------------------------------------------------------------
# The agent, and its configs made with the CLI.
my $limit = 2;
my $agent_port = PostgreSQL::Test::Cluster::get_free_port();
# kept after the run (tmp_check/log), like the servers' logs
my $agent_log = "$PostgreSQL::Test::Utils::log_path/030_drivers_agent.log";
my $agent_proc = hd_agent(dir => $tmp, port => $agent_port, log => $agent_log, start => 0,
	files => { 'users.txt' => qq{"ops" "ops-pw"\n} },
	settings => <<"EOF");
log_level = debug
query_wait_timeout = 60
server_login_retry = 100ms
admin_users = ops
auth_file = $tmp/users.txt
EOF
my $ini = $agent_proc->{ini};

my %config_of = (transaction => 'app_tx', session => 'app_session', cache => 'app_cache');
for my $mode (sort keys %config_of)
{
	my ($out, $err) = ('', '');
	my @caching = $mode eq 'cache' ? ('--max-age', '300') : ('--caching-disabled');
	my $ok = IPC::Run::run(
		[
			$agent, 'create', $config_of{$mode}, '-c', $ini,
			"--connection-string=$origin_url",
			'--origin-connection-limit', $limit,
			'--pool-mode', $mode eq 'cache' ? 'transaction' : $mode, @caching
		],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($ok, "hyperdrive create $config_of{$mode} --pool-mode $mode") or diag($err);
	like($out, qr{^connection string: postgresql://app\@127\.0\.0\.1:$agent_port/$config_of{$mode}$}m,
		"create prints the client connection string for $config_of{$mode}");
}

# SHOW CACHE of app_cache: hits, misses and the bypass reasons
sub cache_row
{
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = 'ops-pw';
	IPC::Run::run([ 'psql', '-XAtq', '-F', '|', '-h', '127.0.0.1', '-p', $agent_port,
			'-U', 'ops', '-d', 'hyperdrive', '-c', 'SHOW CACHE' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line, -1;
		return { hits => $f[3], misses => $f[4], stored => $f[5], invalidated => $f[6],
			bypasses => $f[7], connected => $f[8], lag => $f[10] } if $f[0] eq 'app_cache';
	}
	return {};
}

{
	open my $fh, '>', $agent_log or die "$agent_log: $!";
	close $fh;
}
sub agent_alive { return $agent_proc->alive; }

{
	my $up = $agent_proc->start(poll => 0.1);
	ok($up, "the agent listens on 127.0.0.1:$agent_port")
	  or BAIL_OUT("the agent did not start:\n" . slurp_from($agent_log, 0, 20000));
}

# A first query through each config with psql: a clearer failure than node's.
for my $mode (sort keys %config_of)
{
	my $url = "postgresql://app\@127.0.0.1:$agent_port/$config_of{$mode}";
	local $ENV{PGPASSWORD} = $password;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', '-d', $url, '-c', 'select current_user, current_database()' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($out, "app|app\n", "psql through $config_of{$mode} reaches the origin as app")
	  or diag("psql: $err\nagent log:\n" . slurp_from($agent_log, 0, 20000));
}

# ---------------------------------------------------------------------------
# The drivers: each file directly on the origin, then through each config.
my $file_timeout = 120;
my @runs = (
	[ direct => $origin_url ],
	[ transaction => "postgresql://app:$password\@127.0.0.1:$agent_port/$config_of{transaction}" ],
	[ session => "postgresql://app:$password\@127.0.0.1:$agent_port/$config_of{session}" ],
	[ cache => "postgresql://app:$password\@127.0.0.1:$agent_port/$config_of{cache}" ],
);
my $connected = 0;
for (1 .. 150)
{
	my $row = cache_row();    # connected, and a first freshness probe applied
	last if $connected = (($row->{connected} // '') eq 'yes' && ($row->{lag} // -1) >= 0);
	usleep(100_000);
}
ok($connected, 'app_cache\'s change stream connects');
for my $run (@runs)
{
	my ($mode, $url) = @$run;
	for my $file (@driver_files)
	{
		my $before = cache_row();
		my $log_start = -s $agent_log // 0;
		local $ENV{HYPERDRIVE_URL} = $url;
		local $ENV{ORIGIN_URL} = $origin_url;
		local $ENV{HD_POOL_MODE} = $mode eq 'cache' ? 'transaction' : $mode;
		# (common.mjs: with hits, clients need origin connections less often)
		local $ENV{HD_EXPECT_ROTATION} = $mode eq 'cache' ? '0' : '1';
		local $ENV{HD_ORIGIN_LIMIT} = $limit;
		local $ENV{NO_COLOR} = '1';
		local $ENV{FORCE_COLOR} = '0';
		hd_driver_run(
			name => $mode eq 'direct' ? "$file directly on the origin" : "$file through the agent ($mode pooling)",
			cmd => [ $node_bin, '--test', '--test-reporter=spec', $file ],
			dir => $drivers, timeout => $file_timeout, about => "HYPERDRIVE_URL for $mode",
			log => $mode eq 'direct' ? undef : $agent_log, log_start => $log_start);
		ok(agent_alive(), "the agent is still running after $file ($mode)")
		  or BAIL_OUT("the agent exited:\n" . slurp_from($agent_log, $log_start, 20000));
		if ($mode eq 'cache')
		{
			my $after = cache_row();
			my $hits = $after->{hits} - $before->{hits};
			ok($hits > 0, "$file through app_cache: served from the cache ($hits hits, "
				  . ($after->{misses} - $before->{misses}) . ' misses)')
			  or diag("SHOW CACHE: $after->{bypasses}");
			note("app_cache after $file: $after->{bypasses}");
		}
	}
}

# ---------------------------------------------------------------------------
# SIGTERM: the agent drains and exits cleanly.
$agent_proc->signal('TERM');
my $reaped = $agent_proc->exited(10);
ok($reaped, 'the agent exits on SIGTERM');
is($agent_proc->status, 0, 'with status 0') if $reaped;
unlike(slurp_from($agent_log, 0, 1 << 24), qr/\bapp-Secret-7\b/, 'the agent log holds no password');

$node->stop;
done_testing();
