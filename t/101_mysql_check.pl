# `hyperdrive check` of MySQL configs (protocol mysql), against a throwaway
# MariaDB (t/MariaDB.pm, with TLS): the login with the config's password,
# the server's version, the warning (not a failure) with the GRANT when the
# config's user cannot read mysql.global_priv and ok once it can,
# allow_load_local against the origin's local_infile, TLS per sslmode
# (prefer: on; off; verified against the CA; refused with another CA), a
# wrong password, a port nothing listens on, and a missing
# mysql_listen_port. None of the PostgreSQL checks runs for such a config,
# and no output shows a password.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use MariaDB;

my $PW = 'my-Check-pw9';
my $my = MariaDB->new('check');
$my->init(ssl => 1);
$my->start;
my $port = $my->port;
$my->create_app_db($PW);

my $dir = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_mycheck'));
my $ini = "$dir/hyperdrive.ini";
my $myport = PostgreSQL::Test::Cluster::get_free_port();
write_file($ini, "[agent]\nstate_dir = $dir/state\nlisten_port = 6432\nmysql_listen_port = $myport\n");
my $all = '';

# `hyperdrive check ARGS`: (exit status, output)
sub check
{
	my (@args) = @_;
	my $out = '';
	IPC::Run::run([ $HD, 'check', '-c', $ini, @args ], '<', \undef, '>', \$out, '2>&1',
		IPC::Run::timeout(60));
	$all .= $out;
	return ($? >> 8, $out);
}

my $url = "mysql://app:$PW\@127.0.0.1:$port/shopdb";
hd_cli($ini, 'create shop', 'create', 'shop', "--connection-string=$url");

my ($rc, $out) = check('shop');
is($rc, 0, 'check: a reachable MariaDB origin passes') or diag($out);
like($out, qr/^ok: shop: connects to 127\.0\.0\.1:$port database shopdb as app \(10\.\d+\.\d+-MariaDB\S*, TLS \S+\)$/m,
	'the login, with the server and TLS (prefer: taken when offered)');
like($out, qr/^ok: shop: server version 10\.\d+\.\d+-MariaDB\S* is known$/m, 'the version is known');
like($out, qr/^warning: shop: the config's user cannot read mysql\.global_priv \(.*denied.*\): only it can log in through the agent; .*GRANT SELECT ON mysql\.global_priv TO 'app'\@'127\.0\.0\.1';$/m,
	'no SELECT on mysql.global_priv: a warning with the GRANT to run');
unlike($out, qr/wal_level|extension|REPLICATION|output plugin/, 'none of the PostgreSQL checks');
like($out, qr/^all checks passed$/m, 'the warning is not a failure');

$my->sql(q{GRANT SELECT ON mysql.global_priv TO 'app'@'127.0.0.1'});
($rc, $out) = check('shop');
like($out, qr/^ok: shop: the config's user can read mysql\.global_priv/m, 'after the GRANT: ok');
unlike($out, qr/^warning:/m, 'and no warning');

# allow_load_local: the origin's local_infile
hd_cli($ini, 'update shop --allow-load-local', 'update', 'shop', '--allow-load-local=true');
($rc, $out) = check('shop');
like($out, qr/^ok: shop: allow_load_local: the origin takes LOAD DATA LOCAL \(local_infile ON\)$/m,
	'allow_load_local with local_infile ON: ok');
$my->sql('SET GLOBAL local_infile = OFF');
($rc, $out) = check('shop');
like($out, qr/^warning: shop: allow_load_local is true, but the origin has local_infile OFF: LOAD DATA LOCAL fails there; SET GLOBAL local_infile = ON/m,
	'local_infile OFF: a warning saying what to do');
is($rc, 0, 'a warning, not a failure');
$my->sql('SET GLOBAL local_infile = ON');
hd_cli($ini, 'update shop --allow-load-local=false', 'update', 'shop', '--allow-load-local=false');
($rc, $out) = check('shop');
unlike($out, qr/local_infile/, 'allow_load_local false: local_infile is not checked');

# TLS per sslmode
hd_cli($ini, 'update shop: ssl-mode DISABLED', 'update', 'shop', "--connection-string=$url?ssl-mode=DISABLED");
($rc, $out) = check('shop');
like($out, qr/^ok: shop: connects to .*, TLS off\)$/m, 'ssl-mode DISABLED: TLS off');
my $ca = $my->ssl_ca;
hd_cli($ini, 'update shop: VERIFY_IDENTITY', 'update', 'shop',
	"--connection-string=$url?ssl-mode=VERIFY_IDENTITY&ssl-ca=$ca");
($rc, $out) = check('shop');
is($rc, 0, 'VERIFY_IDENTITY with the server\'s CA: passes') or diag($out);
like($out, qr/^ok: shop: connects to .*, TLS (?!off)\S+\)$/m, 'and TLS is on');
# a CA that did not sign the server's certificate
my $other = MariaDB->new('otherca');
$other->init(ssl => 1);
hd_cli($ini, 'update shop: VERIFY_CA, another CA', 'update', 'shop',
	"--connection-string=$url?ssl-mode=VERIFY_CA&ssl-ca=" . $other->ssl_ca);
($rc, $out) = check('shop');
is($rc, 1, 'VERIFY_CA with a CA that did not sign it: fails');
like($out, qr/^FAIL: shop: cannot connect to 127\.0\.0\.1:$port database shopdb as app: .*; fix: /m,
	'FAIL: cannot connect, with the reason');

# a wrong password, a closed port
hd_cli($ini, 'update shop: wrong password', 'update', 'shop', "--connection-string=$url?ssl-mode=PREFERRED",
	'--sslrootcert=', '--origin-password=wrong-Check-pw');
($rc, $out) = check('shop');
is($rc, 1, 'a wrong password: exit 1');
like($out, qr/^FAIL: shop: cannot connect .*Access denied for user 'app'\@'127\.0\.0\.1'.*; fix: make the origin reachable, or correct the config \(hyperdrive update shop /m,
	'FAIL: access denied, and how to fix the config');
my $closed = PostgreSQL::Test::Cluster::get_free_port();
hd_cli($ini, 'create closed', 'create', 'closed', "--connection-string=mysql://app\@127.0.0.1:$closed/shopdb");
($rc, $out) = check('closed');
like($out, qr/^FAIL: closed: cannot connect to 127\.0\.0\.1:$closed .*Can't connect/m, 'nothing listening: FAIL');

# no MySQL listener
hd_cli($ini, 'update shop: right password', 'update', 'shop', "--connection-string=$url?ssl-mode=PREFERRED");
write_file($ini, "[agent]\nstate_dir = $dir/state\n");
($rc, $out) = check('shop');
is($rc, 1, 'no mysql_listen_port: exit 1');
like($out, qr/^FAIL: shop: a MySQL origin, but the agent has no MySQL listener: its clients cannot reach it; fix: set mysql_listen_port/m,
	'no mysql_listen_port: FAIL naming the setting');
like($out, qr/^ok: shop: connects to /m, 'the origin is still checked');

unlike($all, qr/\Q$PW\E|wrong-Check-pw/, 'no output contains a password');
$my->stop;

done_testing();
