# A MySQL config (protocol mysql) seen from the PostgreSQL side of the
# agent: a PostgreSQL client naming it is refused with the port that serves
# it, and nothing of the cache (change stream, freshness probe, control
# connection) is started for it, at start or when one appears or a
# PostgreSQL config turns into one while the agent runs; stream-watch
# refuses it. A PostgreSQL config of the same agent keeps its stream and
# serves its clients.
#
# No MySQL server is needed: nothing here may reach the MySQL origin (its
# address is a port nothing listens on).
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use HdTest;
use PgWire;

CacheHarness::setup(tag => '035_mysql_config_pgwire', node => 'origin');
my $myport = PostgreSQL::Test::Cluster::get_free_port();
$agent->write_settings("mysql_listen_port = $myport\n");
my $nowhere = PostgreSQL::Test::Cluster::get_free_port();
hdcli('create shop (mysql)', 'create', 'shop', "--connection-string=mysql://app:x\@127.0.0.1:$nowhere/shopdb");
ok(start_agent(), 'the agent starts with a MySQL config') or BAIL_OUT(slurp_from($log, 0, 4000));

ok(stream_ready('app'), 'the PostgreSQL config\'s change stream runs');
is(sel('SELECT name FROM items WHERE id = 1'), 'apple', 'and its clients are served');

# Refused: psql, and the exact error a driver gets.
sub psql_to
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $PW;
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
			'-d', $db, '-c', 'SELECT 1' ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	return ($? >> 8, $err);
}
my ($rc, $err) = psql_to('shop');
isnt($rc, 0, 'psql to the MySQL config: refused');
like($err, qr/config "shop" is a MySQL origin: connect to port $myport with a MySQL client/,
	'psql: the message names the MySQL port');
my $c = w_login(port => $aport, user => 'app', password => $PW, db => 'shop');
ok(!$c->{ready}, 'PgWire login to the MySQL config: not let in');
is($c->{error}{C}, '3D000', 'FATAL 3D000');
is($c->{error}{S}, 'FATAL', 'severity FATAL');
unlike(slurp_from($log), qr/127\.0\.0\.1:$nowhere/, 'nothing tried the MySQL origin\'s address');

# Nothing of the cache for it.
my $shop = cache_status('shop');
ok(!defined $shop->{connected}, 'SHOW CACHE has no row for the MySQL config');
unlike(slurp_from($log), qr/cache of config "shop"/, 'the log has no cache line of the MySQL config');

# stream-watch refuses it.
{
	my ($out, $serr) = ('', '');
	IPC::Run::run([ $hd, 'stream-watch', 'shop', '-c', $ini ], '<', \undef, '>', \$out, '2>', \$serr,
		IPC::Run::timeout(30));
	isnt($? >> 8, 0, 'stream-watch of the MySQL config: exit status not 0');
	like($serr, qr/config "shop" is a mysql origin: it has no change stream/, 'stream-watch: says why');
}

# One created while the agent runs: picked up (refused with the port), no stream.
my $offset = -s $log;
hdcli('create shop2 (mysql, while running)', 'create', 'shop2',
	"--connection-string=mariadb://app\@127.0.0.1:$nowhere/other");
ok(wait_for(sub { (psql_to('shop2'))[1] =~ /config "shop2" is a MySQL origin/ }, 10),
	'a MySQL config created while running: picked up, and refused on the PostgreSQL port');
unlike(slurp_from($log, $offset), qr/cache of config "shop2"/, 'and nothing of the cache starts for it');

# A PostgreSQL config turned into a MySQL one: its stream stops, its clients go.
$offset = -s $log;
my $held = raw_connect('app', $PW, 'app');
hdcli('update app to mysql://', 'update', 'app', "--connection-string=mysql://app:x\@127.0.0.1:$nowhere/app");
ok(wait_for(sub { slurp_from($log, $offset) =~ /cache of config "app": caching disabled: stopping its change stream/ }, 10),
	'a PostgreSQL config turned MySQL: its change stream stops');
my ($type, $body) = w_msg($held, 10);
is($type, 'E', 'a client of it that was logged in gets an error');
like($body, qr/57P01.*the config of this database was changed/s, '57P01: the config was changed');
($type) = w_msg($held, 10);
is($type, 'EOF', 'and is disconnected');
ok(wait_for(sub { (psql_to('app'))[1] =~ /config "app" is a MySQL origin: connect to port $myport/ }, 10),
	'and its new PostgreSQL clients are refused');
ok(!defined cache_status('app')->{connected}, 'SHOW CACHE has no row for it any more');
unlike(slurp_from($log), qr/127\.0\.0\.1:$nowhere/, 'nothing ever tried a MySQL origin\'s address');

$agent->signal('TERM');
ok($agent->exited(30), 'the agent exits on SIGTERM');

done_testing();
