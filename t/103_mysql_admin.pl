# The admin console and /metrics with a MySQL config next to a PostgreSQL
# one: a throwaway MariaDB (t/MariaDB.pm) behind config shop (origin limit
# 1, transaction pooling, reached on mysql_listen_port) and a PostgreSQL
# origin behind config pgapp. MySQL clients are the mariadb CLI, kept open
# and fed one statement at a time, so that one can hold a transaction while
# another waits for the only origin connection. Checked: SHOW CONFIGS,
# POOLS, CLIENTS, SERVERS and STATS list the MySQL pool's counts with
# protocol mysql (the held connection's id is the origin's CONNECTION_ID()),
# /metrics has the series with protocol="mysql" and the wing's counters,
# PAUSE holds a MySQL pool and a pool made while paused, RESUME lets them
# go, KILL closes the config's sessions and connections; and the
# PostgreSQL config's rows and series keep their values throughout.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use MariaDB;

my $PW = 'my-Admin-pw3';
my $pg_password = 'pg-Admin-pw4';
my $ops_password = 'ops-Admin-pw5';

# ---------------------------------------------------------------------------
# The origins.
my $my = MariaDB->new('admin');
$my->init;
$my->start;
$my->create_app_db($PW);

my $node = start_origin('pg');
$node->safe_psql('postgres', "CREATE ROLE pgapp LOGIN PASSWORD '$pg_password'; CREATE DATABASE pgapp OWNER pgapp;");

# ---------------------------------------------------------------------------
# The agent.
my $myport = PostgreSQL::Test::Cluster::get_free_port();
my $metrics_port = PostgreSQL::Test::Cluster::get_free_port();
my $agent = hd_agent(
	name => 'mysql_admin',
	bail => 1,
	settings => "mysql_listen_port = $myport\nquery_wait_timeout = 120\nlog_level = info\n"
	  . "admin_users = ops\nauth_file = users.txt\nmetrics_addr = 127.0.0.1:$metrics_port\n",
	files => { 'users.txt' => qq{"ops" "$ops_password"\n} },
	configs => [
		[
			'create shop', 'shop',
			"--connection-string=mysql://app:$PW\@127.0.0.1:" . $my->port . '/shopdb',
			'--origin-connection-limit', '1'
		],
		[
			'create pgapp', 'pgapp',
			"--connection-string=postgresql://pgapp:$pg_password\@127.0.0.1:" . $node->port . '/pgapp',
			'--origin-connection-limit', '2', '--caching-disabled'
		]
	]);

# ---------------------------------------------------------------------------
# Helpers.

# An admin command through psql: ([column names], [rows as hashes]); dies if psql fails.
sub admin
{
	my ($command) = @_;
	local $ENV{PGPASSWORD} = $ops_password;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-A', '-F', '|', '-P', 'footer=off', '-d',
			"postgresql://ops\@127.0.0.1:$agent->{port}/hyperdrive", '-c', $command
		],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	die "psql $command: $err" if $?;
	return psql_table($out);
}

# The rows of SHOW $what whose $key is $value.
sub rows_of
{
	my ($what, $key, $value) = @_;
	my (undef, $rows) = admin("SHOW $what");
	return grep { ($_->{$key} // '') eq $value } @$rows;
}

my $http = HTTP::Tiny->new(timeout => 30);

sub metrics
{
	my $res = $http->get("http://127.0.0.1:$metrics_port/metrics");
	die "GET /metrics: $res->{status}" unless $res->{status} == 200;
	return $res->{content};
}

sub metric
{
	my ($text, $series) = @_;
	return $text =~ /^\Q$series\E (\S+)$/m ? $1 : undef;
}

# A mariadb CLI session through the agent, fed one statement at a time
# (batch mode, unbuffered: each result is printed as it comes).
sub my_session
{
	my (@extra) = @_;
	my $s = { in => '', out => '', err => '' };
	local $ENV{MYSQL_PWD} = $PW;
	$s->{h} = IPC::Run::start(
		[
			'mariadb', '-h', '127.0.0.1', '-P', $myport, '-u', 'app', '-N', '-B', '-n', @extra,
			'shop'
		],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, IPC::Run::timeout(300));
	return $s;
}

sub my_send
{
	my ($s, $sql) = @_;
	$s->{in} .= "$sql\n";
	$s->{h}->pump_nb;
	return;
}

# Whether the session's output matches $re within 30 s.
sub my_wait
{
	my ($s, $re) = @_;
	return wait_for(sub { $s->{h}->pump_nb if $s->{h}->pumpable; $s->{out} =~ $re }, 30);
}

# ---------------------------------------------------------------------------
# A PostgreSQL client first: the PostgreSQL rows to compare with later.
{
	local $ENV{PGPASSWORD} = $pg_password;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'psql', '-X', '-At', '-d', "postgresql://pgapp\@127.0.0.1:$agent->{port}/pgapp", '-c', 'SELECT 41 + 1' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($out, "42\n", 'a PostgreSQL client through the agent') or diag($err);
}
my ($pg_stats) = rows_of('STATS', 'config', 'pgapp');
my ($pg_pool) = rows_of('POOLS', 'config', 'pgapp');
my $pg_metrics = metrics();
my $pg_txns = metric($pg_metrics, 'hyperdrive_transactions_total{config="pgapp",protocol="postgresql"}');
cmp_ok($pg_txns // 0, '>=', 1, 'pgapp: its transaction counted, labelled postgresql');

{
	my ($cols, $rows) = admin('SHOW CONFIGS');
	is($cols->[-1], 'protocol', 'SHOW CONFIGS: protocol is the last column');
	my %proto = map { $_->{name} => $_->{protocol} } @$rows;
	is($proto{shop}, 'mysql', 'SHOW CONFIGS: shop is mysql');
	is($proto{pgapp}, 'postgresql', 'SHOW CONFIGS: pgapp is postgresql');
	my ($shop) = grep { $_->{name} eq 'shop' } @$rows;
	is($shop->{port}, $my->port, 'SHOW CONFIGS: shop\'s origin port');
}

# ---------------------------------------------------------------------------
# One MySQL session holds a transaction (the only origin connection), another waits.
my $a = my_session();
my_send($a, 'BEGIN;');
my_send($a, "SELECT CONCAT('conn=', CONNECTION_ID());");
ok(my_wait($a, qr/^conn=(\d+)$/m), 'session a: in a transaction on the origin') or diag($a->{err});
my ($origin_id) = $a->{out} =~ /^conn=(\d+)$/m;

my $b = my_session();
my_send($b, "SELECT 'b-answered';");
ok(wait_for(sub { my ($p) = rows_of('POOLS', 'config', 'shop'); $p && $p->{clients_waiting} == 1 }, 30),
	'SHOW POOLS: session b waits for the origin connection');
{
	my ($cols, $rows) = admin('SHOW POOLS');
	is($cols->[-1], 'protocol', 'SHOW POOLS: protocol is the last column');
	my @shop = grep { $_->{config} eq 'shop' } @$rows;
	is(scalar @shop, 1, 'SHOW POOLS: one pool of shop');
	my $p = $shop[0];
	is($p->{protocol}, 'mysql', 'SHOW POOLS: protocol mysql');
	like($p->{role}, qr{^app/[0-9a-f]{8}/\d+(/[0-9a-f]+)?$},
		'SHOW POOLS: the role is user/capabilities/collation[/MariaDB capabilities]');
	is_deeply([ @$p{qw(clients_active clients_waiting servers_active servers_idle servers_connecting paused)} ],
		[ 1, 1, 1, 0, 0, 'no' ], 'SHOW POOLS: one client active, one waiting, one origin connection held');
	my ($pg) = grep { $_->{config} eq 'pgapp' } @$rows;
	is_deeply($pg, $pg_pool, 'SHOW POOLS: the PostgreSQL pool\'s row is unchanged');
}
{
	my ($cols, $rows) = admin('SHOW CLIENTS');
	is("@$cols[6..8]", 'protocol backend_pid pinned', 'SHOW CLIENTS: the new columns at the end');
	my @mine = grep { $_->{protocol} eq 'mysql' } @$rows;
	is(scalar @mine, 2, 'SHOW CLIENTS: two MySQL clients');
	my ($active) = grep { $_->{state} eq 'active' } @mine;
	my ($waiting) = grep { $_->{state} eq 'waiting' } @mine;
	ok($active && $waiting, 'SHOW CLIENTS: one active, one waiting');
	is($active->{backend_pid}, $origin_id, 'SHOW CLIENTS: the active one\'s backend_pid is its CONNECTION_ID()');
	is($active->{has_server}, 'yes', 'SHOW CLIENTS: it has a server');
	is($waiting->{has_server}, 'no', 'SHOW CLIENTS: the waiting one has none');
	is($waiting->{backend_pid}, '', 'SHOW CLIENTS: and no backend_pid');
	is("$active->{user} $active->{database}", 'app shop', 'SHOW CLIENTS: user and config');
	like($active->{address}, qr/^127\.0\.0\.1:\d+$/, 'SHOW CLIENTS: address');
	like($active->{connected_at}, qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00$/, 'SHOW CLIENTS: connected_at');
	is($active->{pinned}, '', 'SHOW CLIENTS: not pinned');
	my @pg = grep { $_->{protocol} eq 'postgresql' } @$rows;
	is(scalar @pg, 1, 'SHOW CLIENTS: the console is the one PostgreSQL client');
}
{
	my ($cols, $rows) = admin('SHOW SERVERS');
	is($cols->[-1], 'protocol', 'SHOW SERVERS: protocol is the last column');
	my @shop = grep { $_->{config} eq 'shop' } @$rows;
	is(scalar @shop, 1, 'SHOW SERVERS: one origin connection of shop');
	is("$shop[0]{protocol} $shop[0]{state} $shop[0]{backend_pid}", "mysql active $origin_id",
		'SHOW SERVERS: mysql, active, backend_pid is the origin\'s connection id');
	cmp_ok($shop[0]{transactions}, '>=', 1, 'SHOW SERVERS: handed out at least once');
	my @pg = grep { $_->{config} eq 'pgapp' } @$rows;
	is(join(',', map { $_->{protocol} } @pg), 'postgresql', 'SHOW SERVERS: pgapp\'s connection, postgresql');
}
{
	my $text = metrics();
	my $l = 'config="shop",protocol="mysql"';
	is(metric($text, "hyperdrive_clients{$l,state=\"active\"}"), 1, '/metrics: a MySQL client active');
	is(metric($text, "hyperdrive_clients{$l,state=\"waiting\"}"), 1, '/metrics: one waiting');
	is(metric($text, "hyperdrive_server_connections{$l,state=\"active\"}"), 1,
		'/metrics: the origin connection held');
	ok(defined metric($text, "hyperdrive_transactions_total{$l}"), '/metrics: the counters have shop\'s series');
	ok(defined metric($text, "hyperdrive_wait_duration_seconds_count{$l}"), '/metrics: and the histograms');
	is(metric($text, 'hyperdrive_clients{config="pgapp",protocol="postgresql",state="active"}'), 0,
		'/metrics: pgapp has no active client');
}

my_send($a, 'COMMIT;');
ok(my_wait($b, qr/^b-answered$/m), 'session b is answered once a commits') or diag($b->{err});
ok(wait_for(sub {
	my ($p) = rows_of('POOLS', 'config', 'shop');
	$p && $p->{clients_active} == 0 && $p->{clients_waiting} == 0 && $p->{servers_idle} == 1 }, 30),
	'SHOW POOLS: both idle, the origin connection back in the pool');
{
	my ($s) = rows_of('STATS', 'config', 'shop');
	is($s->{protocol}, 'mysql', 'SHOW STATS: shop is mysql');
	cmp_ok($s->{avg_wait_ms}, '>', 0, 'SHOW STATS: shop\'s clients waited');
	my $text = metrics();
	cmp_ok(metric($text, 'hyperdrive_wait_duration_seconds_count{config="shop",protocol="mysql"}'), '>=', 2,
		'/metrics: both waits counted (the first connection\'s and b\'s)');
}

# ---------------------------------------------------------------------------
# PAUSE: the pool holds its connection; a pool made meanwhile starts paused.
(undef, undef) = admin('PAUSE shop');
my_send($b, "SELECT 'b-after-resume';");
my $c = my_session('-i');	# IGNORE_SPACE: other capabilities, another pool
my_send($c, "SELECT 'c-after-resume';");
ok(wait_for(sub {
	my @p = rows_of('POOLS', 'config', 'shop');
	@p == 2 && !grep { $_->{clients_waiting} != 1 } @p }, 30),
	'PAUSE shop: a client waits in each of its two pools');
{
	my @p = rows_of('POOLS', 'config', 'shop');
	is(join(',', map { $_->{paused} } @p), 'yes,yes', 'SHOW POOLS: both paused, the new one too');
	my ($pg) = rows_of('POOLS', 'config', 'pgapp');
	is($pg->{paused}, 'no', 'pgapp is not paused');
}
ok($b->{out} !~ /b-after-resume/ && $c->{out} !~ /c-after-resume/, 'nobody was answered while paused');
(undef, undef) = admin('RESUME shop');
ok(my_wait($b, qr/^b-after-resume$/m) && my_wait($c, qr/^c-after-resume$/m),
	'RESUME shop: both are answered');
is(join(',', map { $_->{paused} } rows_of('POOLS', 'config', 'shop')), 'no,no', 'SHOW POOLS: resumed');

# ---------------------------------------------------------------------------
# A pin: a user variable keeps a's origin connection.
my_send($a, 'SET @kept = 7;');
my_send($a, "SELECT CONCAT('kept=', \@kept);");
ok(my_wait($a, qr/^kept=7$/m), 'session a: a user variable') or diag($a->{err});
{
	my ($row) = grep { $_->{protocol} eq 'mysql' && $_->{state} eq 'active' } @{ (admin('SHOW CLIENTS'))[1] };
	ok($row, 'SHOW CLIENTS: the pinned session keeps its origin connection');
	my ($logged) = slurp_from($agent->{log}, 0) =~ /pinned to its origin connection: (.+)$/m;
	ok(length($row->{pinned} // ''), 'SHOW CLIENTS: pinned says why');
	is($row->{pinned}, $logged, 'SHOW CLIENTS: the reason the log gives');
	my $text = metrics();
	is(metric($text, 'hyperdrive_mysql_pins_total'), 1, '/metrics: hyperdrive_mysql_pins_total 1');
	is(metric($text, 'hyperdrive_mysql_diagnostics_refused_total'), 0,
		'/metrics: hyperdrive_mysql_diagnostics_refused_total 0');
}

# ---------------------------------------------------------------------------
# KILL shop: its sessions and origin connections close; pgapp's stay.
(undef, undef) = admin('KILL shop');
ok(wait_for(sub { !grep { $_->{protocol} eq 'mysql' } @{ (admin('SHOW CLIENTS'))[1] } }, 30),
	'KILL shop: no MySQL client left');
ok(wait_for(sub { !rows_of('SERVERS', 'config', 'shop') }, 30), 'KILL shop: no origin connection of shop left');
ok(wait_for(sub { $my->sql("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'app'") =~ /^0$/m }, 30),
	'the origin has no connection of app left');
like(slurp_from($agent->{log}, 0), qr/Connection was killed by the administrator/, 'the log says why');
for my $s ($a, $b, $c)
{
	$s->{in} .= "SELECT 'still here';\n";
	eval { $s->{h}->finish; };
	unlike($s->{out}, qr/still here/, 'a killed session gets no more answers');
}

# ---------------------------------------------------------------------------
# The PostgreSQL config's rows kept their values.
{
	my ($s) = rows_of('STATS', 'config', 'pgapp');
	is_deeply($s, $pg_stats, 'SHOW STATS: pgapp\'s row is what it was before the MySQL clients');
	my ($p) = rows_of('POOLS', 'config', 'pgapp');
	is_deeply($p, $pg_pool, 'SHOW POOLS: and its pool\'s');
	my $pg_series = sub { join("\n", grep { /config="pgapp"/ && !/^hyperdrive_cache_/ } split /\n/, $_[0]) };
	my $before = $pg_series->($pg_metrics);
	like($before, qr/^hyperdrive_queries_total\{config="pgapp",protocol="postgresql"\} \d+$/m,
		'/metrics: pgapp\'s series carry protocol="postgresql"');
	is($pg_series->(metrics()), $before, '/metrics: pgapp\'s series are what they were');
}

ok($agent->alive, 'the agent is still running');
$agent->signal('TERM');
$agent->finish;
$my->stop;
done_testing();
