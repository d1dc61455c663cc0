# The admin console (database "hyperdrive") and the Prometheus endpoint.
#
# An origin (SCRAM over TCP, role app, database app) and one agent with one
# config, app (transaction pooling), admin_users = ops, ghost and an
# auth_file listing ops (plaintext password) and viewer. The console is
# checked twice over: with psql, as an operator would use it, and with
# PgWire (t/PgWire.pm, SCRAM-SHA-256 included), for what psql hides:
# SQLSTATEs, severities, column types, ParameterStatus. Then PAUSE / RESUME,
# RELOAD, KILL, the /metrics endpoint (with pgbench traffic), its errors and
# limits, and SHUTDOWN last.
#
# Needs agent/hyperdrive (make agent), psql and pgbench. Run with make
# tempcheck-tap, or
#   prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl t/040_admin_metrics.pl
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $agent = $HD;

my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('admin'));

# ---------------------------------------------------------------------------
# The origin: SCRAM for TCP connections, trust on the test's Unix socket.
my $password = 'app-Secret-7';
my $ops_password = 'ops-Secret-1';
my $ops2_password = 'ops2-Secret-2';
my $node = start_origin('origin', init_extra => [ '--encoding=UTF8', '--locale=C' ],
	conf => "max_connections = 40\nautovacuum = off\n");
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN PASSWORD '$password';
CREATE DATABASE app OWNER app;
CREATE ROLE scram_maker PASSWORD '$ops2_password';
SQL
# a SCRAM secret made by PostgreSQL, for the auth_file
my $ops2_secret =
  $node->safe_psql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_maker'");
like($ops2_secret, qr/^SCRAM-SHA-256\$4096:/, 'PostgreSQL made a SCRAM secret');
$node->command_ok(
	[ 'pgbench', '-i', '-q', '-s', '1', '-U', 'app', '-h', $node->host, '-p', $node->port, 'app' ],
	'pgbench -i on the origin');
my $origin_port = $node->port;
my $origin_url = "postgresql://app:$password\@127.0.0.1:$origin_port/app";

# ---------------------------------------------------------------------------
# The agent.
my $agent_port = PostgreSQL::Test::Cluster::get_free_port();
my $metrics_port = PostgreSQL::Test::Cluster::get_free_port();
my $ini = "$tmp/hyperdrive.ini";
my $users = "$tmp/users.txt";
my $agent_log = "$tmp/agent.log";
my $agent_proc = hd_agent(dir => $tmp, port => $agent_port, log => $agent_log, start => 0);

sub write_ini
{
	my (%o) = @_;
	my $admins = $o{admins} // 'ops, ghost';
	my $level = $o{log_level} // 'info';
	$agent_proc->{settings} = <<"EOF";
log_level = $level
query_wait_timeout = 60
server_login_retry = 100ms
admin_users = $admins
# relative: next to this file
auth_file = users.txt
metrics_addr = 127.0.0.1:$metrics_port
EOF
	$agent_proc->write_settings($o{extra});
}
write_ini();
write_file($users, <<"EOF");
; the admin console's users
# ops has a plaintext password; viewer is not in admin_users
"ops" "$ops_password"
"viewer" "viewer-Secret-3"
EOF

{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			$agent, 'create', 'app', '-c', $ini, "--connection-string=$origin_url",
			'--origin-connection-limit', '4', '--pool-mode', 'transaction'
		],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($ok, 'hyperdrive create app') or diag($err);
}

sub agent_alive { return $agent_proc->alive; }

sub port_open
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
	return 0 unless $sock;
	close $sock;
	return 1;
}

ok($agent_proc->start
	  && wait_for(sub { !agent_alive() || port_open($metrics_port) }, 30) && agent_alive(),
	"the agent listens on $agent_port and metrics on $metrics_port")
  or BAIL_OUT("the agent did not start:\n" . slurp_from($agent_log, 0, 20000));

# ---------------------------------------------------------------------------
# psql helpers.

my $admin_url = "postgresql://ops\@127.0.0.1:$agent_port/hyperdrive";
my $app_url = "postgresql://app\@127.0.0.1:$agent_port/app";

# Runs psql with @args; returns (exit status, stdout, stderr).
sub psql_run
{
	my ($url, $pw, $stdin, @args) = @_;
	local $ENV{PGPASSWORD} = $pw;
	local $ENV{PGCONNECT_TIMEOUT} = 10;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-d', $url, @args ],
		'<', \$stdin, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# An admin command through psql: ([column names], [rows as hashes]).
sub admin
{
	my ($command) = @_;
	my ($rc, $out, $err) =
	  psql_run($admin_url, $ops_password, '', '-A', '-F', '|', '-P', 'footer=off', '-c', $command);
	is($rc, 0, "psql: $command") or diag($err);
	return psql_table($out);
}

# A background psql as app: a handle, its output and error refs.
sub app_background
{
	my ($sql) = @_;
	my ($in, $out, $err) = ('', '', '');
	local $ENV{PGPASSWORD} = $password;
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $app_url, '-c', $sql ],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return ($h, \$out, \$err);
}

# ---------------------------------------------------------------------------
# PgWire, for what psql does not show.

# Logs in to the console as $user (SCRAM-SHA-256 checked both ways). Returns
# (connection or undef, {ParameterStatus, and (BackendKeyData) if it came},
# error fields or undef).
sub raw_login
{
	my ($user, $pw) = @_;
	my $c = w_login(port => $agent_port, user => $user, password => $pw, db => 'hyperdrive',
		timeout => 15);
	my %params = %{ $c->{params} // {} };
	$params{'(BackendKeyData)'} = 1 if defined $c->{pid};
	if (!$c->{ready})
	{
		close $c->{sock} if $c->{sock};
		return (undef, \%params, $c->{error});
	}
	die "bad server signature" if grep({ $_ == 12 } @{ $c->{auth} }) && !$c->{server_verified};
	return ($c, \%params, undef);
}

# Sends a simple Query; returns the replies up to ReadyForQuery as
# [type, payload] pairs (the last is 'Z').
sub raw_query
{
	my ($c, $sql) = @_;
	w_send($c, pq_query($sql));
	return w_result($c, 15)->{msgs};
}

sub types_of { return join ' ', map { $_->[0] } @{ $_[0] }; }

# ---------------------------------------------------------------------------
# A first client through the agent: the pool exists after it.
{
	my ($rc, $out, $err) =
	  psql_run($app_url, $password, '', '-At', '-c', 'select current_user, current_database()');
	is($out, "app|app\n", 'psql through the agent reaches the origin') or diag($err);
}

# ---------------------------------------------------------------------------
# Logging in.
{
	my ($sock, $params, $error) = raw_login('ops', $ops_password);
	ok($sock, 'ops logs in to the console with SCRAM-SHA-256') or diag(explain($error));
	like($params->{server_version} // '', qr/^15\./, 'server_version is the origin\'s');
	is($params->{client_encoding}, 'UTF8', 'client_encoding UTF8');
	is($params->{DateStyle}, 'ISO', 'DateStyle ISO');
	is($params->{integer_datetimes}, 'on', 'integer_datetimes on');
	is($params->{standard_conforming_strings}, 'on', 'standard_conforming_strings on');
	ok($params->{'(BackendKeyData)'}, 'BackendKeyData sent');

	# an unknown command is an ERROR, and the session goes on
	my $r = raw_query($sock, 'SHOW FOO');
	is_deeply([ map { $_->[0] } @$r ], [ 'E', 'Z' ], 'unknown command: ErrorResponse, ReadyForQuery');
	my $e = err_fields($r->[0][1]);
	is($e->{S}, 'ERROR', 'unknown command: severity ERROR');
	is($e->{C}, '42601', 'unknown command: SQLSTATE 42601');
	is($e->{M}, 'unknown command: SHOW FOO', 'unknown command: message');
	is($r->[-1][1], 'I', 'ReadyForQuery idle');

	$r = raw_query($sock, 'show version;');
	is_deeply([ map { $_->[0] } @$r ], [ 'T', 'D', 'C', 'Z' ], 'the session continues: SHOW VERSION');
	like($r->[1][1], qr/hyperdrive \d+\.\d+/, 'SHOW VERSION names the version');
	is($r->[2][1], "SHOW\0", 'CommandComplete SHOW');

	$r = raw_query($sock, "  Show\tStats ; ");
	is(types_of(row_description($r->[0][1])),
		'config transactions queries bytes_received bytes_sent errors wait_timeouts connect_failures avg_query_ms avg_wait_ms protocol',
		'SHOW STATS columns (mixed case, blanks, semicolon)');
	my %oid = map { @$_ } @{ row_description($r->[0][1]) };
	is($oid{config}, 25, 'text columns have type text (25)');
	is($oid{transactions}, 20, 'counts have type int8 (20)');

	$r = raw_query($sock, '');
	is_deeply([ map { $_->[0] } @$r ], [ 'I', 'Z' ], 'empty query: EmptyQueryResponse');

	# the extended protocol: one error, skipped to Sync
	w_send($sock, fmsg('P', "\0SHOW POOLS\0\0\0") . fmsg('B', "\0\0\0\0\0\0\0\0")
		  . fmsg('E', "\0\0\0\0\0") . fmsg('S', ''));
	$r = w_result($sock, 15)->{msgs};
	is_deeply([ map { $_->[0] } @$r ], [ 'E', 'Z' ], 'extended protocol: one error, then ReadyForQuery');
	$e = err_fields($r->[0][1]);
	is($e->{C}, '0A000', 'extended protocol: SQLSTATE 0A000');
	is($e->{M}, 'the admin console supports only simple queries', 'extended protocol: message');
	$r = raw_query($sock, 'SHOW VERSION');
	is($r->[0][0], 'T', 'simple queries work after it');

	w_close($sock);
}

for my $case (
	[ 'ops', 'wrong-password', 'wrong password' ],
	[ 'app', $password, 'a user not in admin_users (with its right password)' ],
	[ 'viewer', 'viewer-Secret-3', 'a user in auth_file but not in admin_users' ],
	[ 'ghost', 'anything', 'a user in admin_users but not in auth_file' ])
{
	my ($user, $pw, $what) = @$case;
	my ($sock, undef, $error) = raw_login($user, $pw);
	ok(!$sock, "$what: refused");
	is($error->{C}, '28P01', "$what: SQLSTATE 28P01");
	is($error->{S}, 'FATAL', "$what: FATAL");
	is($error->{M}, "password authentication failed for user \"$user\"", "$what: PostgreSQL's message");
}
{
	my ($rc, $out, $err) = psql_run($admin_url, 'wrong-password', '', '-c', 'SHOW VERSION');
	isnt($rc, 0, 'psql with a wrong admin password fails');
	like($err, qr/password authentication failed for user "ops"/, 'psql says why');
	like(slurp_from($agent_log, 0, 1 << 22), qr/\(ops\@hyperdrive\): password authentication failed.*SQLSTATE 28P01/,
		'the agent logs 28P01');
}

# ---------------------------------------------------------------------------
# SHOW, through psql, with an idle client of app connected.
my ($idle_h, $idle_in, $idle_out, $idle_err);
{
	($idle_in, $idle_out, $idle_err) = ('', '', '');
	local $ENV{PGPASSWORD} = $password;
	$idle_h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $app_url ],
		'<', \$idle_in, '>', \$idle_out, '2>', \$idle_err, IPC::Run::timeout(120));
	$idle_in .= "select 'ready';\n";
	$idle_h->pump until $idle_out =~ /ready/ || !$idle_h->pumpable;
	like($idle_out, qr/ready/, 'an interactive client of app is connected');
}
{
	my ($cols, $rows) = admin('SHOW CONFIGS');
	is("@$cols", 'id name host port database user pool_mode origin_connection_limit caching protocol',
		'SHOW CONFIGS columns');
	my ($app) = grep { $_->{name} eq 'app' } @$rows;
	ok($app, 'SHOW CONFIGS lists app');
	like($app->{id}, qr/^[0-9a-f]{32}$/, 'with its id');
	is($app->{host}, '127.0.0.1', 'host');
	is($app->{port}, $origin_port, 'port');
	is($app->{database}, 'app', 'database');
	is($app->{user}, 'app', 'user');
	is($app->{pool_mode}, 'transaction', 'pool_mode');
	is($app->{origin_connection_limit}, '4', 'origin_connection_limit');
	is($app->{caching}, 'on', 'caching');
	my ($rc, $out) = psql_run($admin_url, $ops_password, '', '-c', 'SHOW CONFIGS');
	unlike($out, qr/\Q$password\E/, 'SHOW CONFIGS shows no password');
	like($out, qr/^\s*id\s*\|\s*name\s*\|/m, 'psql displays a table');
}
{
	my ($cols, $rows) = admin('SHOW POOLS');
	is("@$cols",
		'config role clients_active clients_waiting servers_active servers_idle servers_connecting paused last_error protocol',
		'SHOW POOLS columns');
	my ($pool) = grep { $_->{config} eq 'app' } @$rows;
	ok($pool, 'SHOW POOLS shows the pool of app after a client used it');
	is($pool->{protocol}, 'postgresql', 'its protocol');
	is($pool->{role}, 'app', 'role app');
	cmp_ok($pool->{servers_idle}, '>=', 1, 'an idle origin connection');
	is($pool->{clients_active}, '0', 'no client holds one');
	is($pool->{paused}, 'no', 'not paused');
	is($pool->{last_error}, '', 'no error');
}
{
	my ($cols, $rows) = admin('SHOW CLIENTS');
	is("@$cols", 'address user database state connected_at has_server protocol backend_pid pinned',
		'SHOW CLIENTS columns');
	my @app = grep { $_->{database} eq 'app' } @$rows;
	is(scalar(@app), 1, 'one client of app');
	is($app[0]{user}, 'app', 'its user');
	is($app[0]{state}, 'idle', 'idle between transactions');
	is($app[0]{has_server}, 'no', 'holding no origin connection');
	is($app[0]{protocol}, 'postgresql', 'a PostgreSQL client');
	is($app[0]{backend_pid}, '', 'no backend_pid while it holds no origin connection');
	is($app[0]{pinned}, '', 'not pinned');
	like($app[0]{address}, qr/^127\.0\.0\.1:\d+$/, 'its address');
	like($app[0]{connected_at}, qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00$/, 'connected_at');
	my ($me) = grep { $_->{database} eq 'hyperdrive' } @$rows;
	is($me->{state}, 'active', 'the console\'s own session is active');
}
{
	my ($cols, $rows) = admin('SHOW SERVERS');
	is("@$cols", 'config role backend_pid state connected_at transactions protocol',
		'SHOW SERVERS columns');
	my @app = grep { $_->{config} eq 'app' } @$rows;
	ok(@app >= 1, 'an origin connection of app');
	my $pids = $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE usename = 'app'");
	my %pid = map { $_ => 1 } split /,/, $pids;
	ok($pid{ $app[0]{backend_pid} }, 'backend_pid is an origin backend of app');
	is($app[0]{protocol}, 'postgresql', 'a PostgreSQL origin connection');
	is($app[0]{state}, 'idle', 'state idle');
	cmp_ok($app[0]{transactions}, '>=', 1, 'it ran transactions');
}
{
	my ($cols, $rows) = admin('SHOW STATS');
	my ($app) = grep { $_->{config} eq 'app' } @$rows;
	cmp_ok($app->{transactions}, '>=', 2, 'SHOW STATS counts transactions');
	cmp_ok($app->{queries}, '>=', 2, 'and queries');
	cmp_ok($app->{bytes_received}, '>', 0, 'and bytes received');
	cmp_ok($app->{bytes_sent}, '>', 0, 'and bytes sent');
	like($app->{avg_query_ms}, qr/^\d+\.\d{3}$/, 'avg_query_ms');
	like($app->{avg_wait_ms}, qr/^\d+\.\d{3}$/, 'avg_wait_ms');
}
{
	my ($cols, $rows) = admin('SHOW HELP');
	is("@$cols", 'command description', 'SHOW HELP columns');
	my %cmd = map { $_->{command} => 1 } @$rows;
	ok($cmd{$_}, "SHOW HELP lists $_")
	  for ('SHOW POOLS', 'PAUSE [config]', 'KILL config', 'RELOAD', 'SHUTDOWN');
	($cols, $rows) = admin('SHOW VERSION');
	like($rows->[0]{version}, qr/^hyperdrive \d/, 'SHOW VERSION through psql');
}
{
	# psql goes on after an error, in the same session
	my ($rc, $out, $err) = psql_run($admin_url, $ops_password,
		"\\set VERBOSITY verbose\nSHOW FOO;\nSHOW VERSION;\n", '-A', '-f', '-');
	like($err, qr/ERROR:  42601: unknown command: SHOW FOO/, 'psql: unknown command, 42601');
	like($out, qr/hyperdrive \d/, 'psql: the next command in the session works');
	($rc, $out, $err) = psql_run($admin_url, $ops_password, '', '-c', 'KILL nosuch');
	like($err, qr/no such config: nosuch/, 'KILL of an unknown config: an error');
}

# ---------------------------------------------------------------------------
# PAUSE and RESUME.
{
	admin('PAUSE app');
	my ($cols, $rows) = admin('SHOW POOLS');
	my ($pool) = grep { $_->{config} eq 'app' } @$rows;
	is($pool->{paused}, 'yes', 'PAUSE app: the pool is paused');

	my ($h, $out, $err) = app_background("select 'after resume'");
	ok(wait_for(sub { my (undef, $r) = admin('SHOW POOLS');
		my ($p) = grep { $_->{config} eq 'app' } @$r;
		$p && $p->{clients_waiting} >= 1 }, 10),
		'a client\'s query waits while app is paused');
	$h->pump_nb;
	is($$out, '', 'it has no answer yet');
	usleep(500_000);
	$h->pump_nb;
	is($$out, '', 'still none half a second later');
	admin('RESUME app');
	$h->finish;
	is($$out, "after resume\n", 'RESUME app: the query finishes') or diag($$err);
	($cols, $rows) = admin('SHOW POOLS');
	($pool) = grep { $_->{config} eq 'app' } @$rows;
	is($pool->{paused}, 'no', 'the pool is no longer paused');

	# PAUSE and RESUME without a config apply to all
	admin('pause');
	(undef, $rows) = admin('SHOW POOLS');
	ok(!grep({ $_->{paused} ne 'yes' } @$rows), 'PAUSE pauses every pool');
	admin('resume;');
	(undef, $rows) = admin('SHOW POOLS');
	ok(!grep({ $_->{paused} ne 'no' } @$rows), 'RESUME resumes every pool');
}

# ---------------------------------------------------------------------------
# RELOAD: log_level, admin_users and auth_file change.
{
	my ($sock, undef, $error) = raw_login('ops2', $ops2_password);
	is($error->{C}, '28P01', 'before RELOAD, ops2 cannot log in');

	write_ini(admins => 'ops, ops2', log_level => 'debug');
	open my $fh, '>>', $users or die $!;
	print $fh "\"ops2\" \"$ops2_secret\"  ; a SCRAM secret\n";
	close $fh;
	my $log_start = -s $agent_log;
	admin('RELOAD');
	($sock, undef, $error) = raw_login('ops2', $ops2_password);
	ok($sock, 'after RELOAD, ops2 (a SCRAM secret in auth_file) logs in') or diag(explain($error));
	close $sock->{sock} if $sock;
	like(slurp_from($agent_log, $log_start, 1 << 20), qr/settings reloaded/, 'the agent logs the reload');

	# a broken settings file: an error, and the old settings stay
	write_file($ini, slurp_from($ini, 0, 1 << 20) . "no_such_setting = 1\n");
	my ($rc, $out, $err) = psql_run($admin_url, $ops_password, '', '-c', 'RELOAD');
	like($err, qr/ERROR:  reload failed, keeping the previous settings: .*no_such_setting/,
		'RELOAD of a broken file: an error that says why');
	write_ini(admins => 'ops, ops2', log_level => 'debug');
	($sock) = raw_login('ops2', $ops2_password);
	ok($sock, 'the previous settings stayed');
	close $sock->{sock} if $sock;

	# auth_type md5 and password: those exchanges (a SCRAM secret still gets SCRAM under md5)
	for my $type (qw(md5 password))
	{
		write_ini(admins => 'ops, ops2', log_level => 'debug', extra => "auth_type = $type\n");
		admin('RELOAD');
		for my $u ([ 'ops', $ops_password ], [ 'ops2', $ops2_password ])
		{
			($rc, $out, $err) = psql_run("postgresql://$u->[0]\@127.0.0.1:$agent_port/hyperdrive",
				$u->[1], '', '-At', '-c', 'SHOW VERSION');
			like($out, qr/^hyperdrive /, "auth_type $type: $u->[0] logs in") or diag($err);
		}
		($rc, $out, $err) = psql_run($admin_url, 'wrong', '', '-c', 'SHOW VERSION');
		like($err, qr/password authentication failed for user "ops"/, "auth_type $type: a wrong password fails");
		($rc, $out, $err) = psql_run("postgresql://viewer\@127.0.0.1:$agent_port/hyperdrive",
			'viewer-Secret-3', '', '-c', 'SHOW VERSION');
		like($err, qr/password authentication failed for user "viewer"/, "auth_type $type: a non-admin fails");
	}
	write_ini(admins => 'ops, ops2', log_level => 'debug');
	admin('RELOAD');
}

# ---------------------------------------------------------------------------
# KILL app: its clients and origin connections go; new ones work.
{
	# two origin connections: one will be in a query, one idle
	my @warm = map { [ app_background('select pg_sleep(0.5)') ] } 1 .. 2;
	$_->[0]->finish for @warm;
	my ($h, $out, $err) = app_background('select pg_sleep(5)');
	ok(wait_for(sub { my (undef, $r) = admin('SHOW CLIENTS');
		grep { $_->{database} eq 'app' && $_->{state} eq 'active' } @$r }, 10),
		'a client of app is in a query');
	my $log_start = -s $agent_log;
	admin('KILL app');
	$h->finish;
	like($$err, qr/terminating connection due to administrator command/,
		'KILL app: the client in a query is told why');
	$idle_in .= "select 'still there';\n";
	eval { $idle_h->finish; };
	unlike($idle_out, qr/still there/, 'KILL app: the idle client is gone too');
	my (undef, $rows) = admin('SHOW CLIENTS');
	is(scalar(grep { $_->{database} eq 'app' } @$rows), 0, 'no client of app is left');
	(undef, $rows) = admin('SHOW SERVERS');
	is(scalar(grep { $_->{config} eq 'app' && $_->{state} ne 'connecting' && $_->{state} ne 'login' } @$rows),
		0, 'no origin connection of app is left');
	like(slurp_from($agent_log, $log_start, 1 << 20), qr/LOG: origin connection .*closing: KILL from the admin console/,
		'KILL closed the idle origin connection (logged with the reason)');
	my ($rc, $o) = psql_run($app_url, $password, '', '-At', '-c', "select 'back'");
	is($o, "back\n", 'a new client of app works after KILL');
}

# ---------------------------------------------------------------------------
# /metrics.
my $http = HTTP::Tiny->new(timeout => 10);
my $metrics_url = "http://127.0.0.1:$metrics_port/metrics";

sub scrape
{
	my $res = $http->get($metrics_url);
	is($res->{status}, 200, 'GET /metrics: 200') or diag("$res->{status} $res->{content}");
	return $res;
}

sub metric
{
	my ($text, $series) = @_;
	return $text =~ /^\Q$series\E (\S+)$/m ? $1 : undef;
}

{
	my $res = scrape();
	like($res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'exposition content type');
	is($res->{headers}{connection}, 'close', 'Connection: close');
	my $text = $res->{content};
	is(metric($text, 'hyperdrive_up'), 1, 'hyperdrive_up 1');
	like($text, qr/^hyperdrive_build_info\{version="\d[^"]*"\} 1$/m, 'hyperdrive_build_info');
	for my $name (qw(hyperdrive_transactions_total hyperdrive_queries_total
		hyperdrive_client_bytes_received_total hyperdrive_client_bytes_sent_total
		hyperdrive_errors_total hyperdrive_wait_timeouts_total
		hyperdrive_origin_connect_failures_total hyperdrive_pinned_clients_total))
	{
		like($text, qr/^# HELP $name \S/m, "$name has HELP");
		like($text, qr/^# TYPE $name counter$/m, "$name is a counter");
		like($text, qr/^$name\{config="app",protocol="postgresql"\} \d+$/m, "$name for config app");
	}
	for my $name (qw(hyperdrive_clients hyperdrive_server_connections))
	{
		like($text, qr/^# TYPE $name gauge$/m, "$name is a gauge");
	}
	is(metric($text, 'hyperdrive_mysql_pins_total'), 0, 'hyperdrive_mysql_pins_total, 0 without MySQL clients');
	like($text, qr/^hyperdrive_clients\{config="app",protocol="postgresql",state="$_"\} \d+$/m, "hyperdrive_clients state $_")
	  for qw(active waiting idle);
	like($text, qr/^hyperdrive_server_connections\{config="app",protocol="postgresql",state="$_"\} \d+$/m,
		"hyperdrive_server_connections state $_")
	  for qw(active idle connecting);
	for my $name (qw(hyperdrive_query_duration_seconds hyperdrive_transaction_duration_seconds
		hyperdrive_wait_duration_seconds))
	{
		like($text, qr/^# TYPE $name histogram$/m, "$name is a histogram");
		my @buckets = $text =~ /^${name}_bucket\{config="app",protocol="postgresql",le="([^"]+)"\} (\d+)$/mg;
		my %b = @buckets;
		is($buckets[-2], '+Inf', "$name: the last bucket is +Inf");
		my @counts = map { $buckets[ 2 * $_ + 1 ] } 0 .. $#buckets / 2;
		ok(!grep({ $counts[$_] < $counts[ $_ - 1 ] } 1 .. $#counts), "$name: buckets are cumulative");
		is(metric($text, "${name}_count{config=\"app\",protocol=\"postgresql\"}"), $b{'+Inf'}, "$name: _count is the +Inf bucket");
		like(metric($text, "${name}_sum{config=\"app\",protocol=\"postgresql\"}"), qr/^[0-9.e+-]+$/, "$name: _sum");
	}

	my $before = metric($text, 'hyperdrive_transactions_total{config="app",protocol="postgresql"}');
	my $q_before = metric($text, 'hyperdrive_query_duration_seconds_count{config="app",protocol="postgresql"}');
	local $ENV{PGPASSWORD} = $password;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'pgbench', '-n', '-t', '50', '-c', '2', '-h', '127.0.0.1', '-p', $agent_port, '-U', 'app', 'app' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	ok($ok, 'pgbench through the agent') or diag("$out$err");
	$text = scrape()->{content};
	cmp_ok(metric($text, 'hyperdrive_transactions_total{config="app",protocol="postgresql"}'), '>=', $before + 100,
		'hyperdrive_transactions_total grew by pgbench\'s transactions');
	cmp_ok(metric($text, 'hyperdrive_query_duration_seconds_count{config="app",protocol="postgresql"}'), '>', $q_before,
		'the query histogram counted them');
	my (undef, $rows) = admin('SHOW STATS');
	my ($app) = grep { $_->{config} eq 'app' } @$rows;
	cmp_ok($app->{transactions}, '>=', $before + 100, 'SHOW STATS agrees');
}
{
	my $res = $http->get("http://127.0.0.1:$metrics_port/nope");
	is($res->{status}, 404, 'another path: 404');
	$res = $http->get("http://127.0.0.1:$metrics_port/metrics?x=1");
	is($res->{status}, 200, 'a query string is ignored');
	$res = $http->request('POST', $metrics_url, { content => 'x' });
	is($res->{status}, 405, 'POST: 405');
	$res = $http->request('HEAD', $metrics_url);
	is($res->{status}, 200, 'HEAD: 200');

	# raw requests: malformed, too large, too slow, and many at once
	my $raw = sub {
		my ($request, $wait) = @_;
		my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $metrics_port,
			Proto => 'tcp') or die "connect: $!";
		print $sock $request;
		$sock->flush;
		my $sel = IO::Select->new($sock);
		my $reply = '';
		while ($sel->can_read($wait // 10))
		{
			my $got = sysread($sock, $reply, 65536, length $reply);
			last unless $got;
		}
		return $reply;
	};
	like($raw->("garbage\r\n\r\n"), qr{^HTTP/1\.1 400 }, 'a malformed request: 400');
	is($raw->('GET /metrics HTTP/1.1' . ("\r\nX-Pad: " . ('a' x 100)) x 100), '',
		'a request over 8 KiB: closed without an answer');

	my @idle = map {
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $metrics_port,
			Proto => 'tcp');
		print $s "GET /metr";
		$s->flush;
		$s
	} 1 .. 5;
	my $t0 = time;
	my $res2 = $http->get($metrics_url);
	is($res2->{status}, 200, 'a scrape is answered while five others are half-sent');
	cmp_ok(time - $t0, '<', 3, 'at once');
	my $sel = IO::Select->new($idle[0]);
	ok($sel->can_read(8), 'a request not finished in 5 s ...');
	my $buf = '';
	is(sysread($idle[0], $buf, 100), 0, '... is closed without an answer');
	close $_ for @idle;
}

# ---------------------------------------------------------------------------
# SHUTDOWN: the agent exits once its clients' transactions end.
{
	my ($h, $out, $err) = app_background("select pg_sleep(2), 'finished'");
	ok(wait_for(sub { my (undef, $r) = admin('SHOW CLIENTS');
		grep { $_->{database} eq 'app' && $_->{state} eq 'active' } @$r }, 10),
		'a client of app is in a query');
	admin('SHUTDOWN');
	ok(agent_alive(), 'the agent is still running right after SHUTDOWN');
	ok(!port_open($agent_port), 'and accepts no new connections');
	$h->finish;
	is($$out, "|finished\n", 'the client in a transaction finished it') or diag($$err);
	my $reaped = $agent_proc->exited(15);
	ok($reaped, 'the agent exits after SHUTDOWN');
	is($agent_proc->status, 0, 'with status 0') if $reaped;
}

unlike(slurp_from($agent_log, 0, 1 << 24), qr/runtime error|Sanitizer/,
	'no sanitizer report in the agent log (for AGENT_EXTRA_CFLAGS=-fsanitize=...)');
unlike(slurp_from($agent_log, 0, 1 << 24), qr/\Q$password\E|\Q$ops_password\E|\Q$ops2_password\E/,
	'the agent log holds no password');
note("agent log:\n" . slurp_from($agent_log, 0, 30000)) if !Test::More->builder->is_passing;

$node->stop;
done_testing();
