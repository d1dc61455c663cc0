# t/MariaDB.pm, the throwaway MariaDB of the MySQL tests: it starts, a user
# made with sql() logs in over TCP with the mariadb client (and over TLS
# verifying the harness's CA), restart keeps the data, kill9 and start
# recover, two servers get two ports, and stop leaves nothing listening.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IO::Socket::INET;
use IPC::Run;
use MariaDB;
use Test::More;

# The mariadb client as USER/PASSWORD over TCP to $my; (exit status, stdout,
# stderr).
sub client
{
	my ($my, $user, $password, $sql, @opts) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'mariadb', '--no-defaults', '--batch', '--skip-column-names',
		'--protocol=TCP', '-h', '127.0.0.1', '-P', $my->port, "-u$user", "-p$password", @opts ],
		'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

my $my = MariaDB->new('harness');
$my->init(ssl => 1);
$my->start;
my $port = $my->port;
ok($port >= 3400 && $port <= 3499, "it listens on a port of 3400-3499 ($port)");
like($my->sql('SELECT VERSION()'), qr/MariaDB/, 'sql() runs as root over the socket');
ok(-S $my->socket, 'socket() is its Unix socket');

$my->sql(q{CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'se cret%';
	CREATE DATABASE appdb; GRANT ALL ON appdb.* TO 'app'@'127.0.0.1';
	CREATE TABLE appdb.t (i int); INSERT INTO appdb.t VALUES (1), (2)});

my ($rc, $out, $err) = client($my, 'app', 'se cret%', "SELECT CURRENT_USER(), SUM(i) FROM appdb.t\n");
is($rc, 0, 'the user logs in over TCP with its password') or diag($err);
is($out, "app\@127.0.0.1\t3\n", 'as itself, and reads its table');

($rc, $out, $err) = client($my, 'app', 'wrong', "SELECT 1\n");
isnt($rc, 0, 'a wrong password is refused');
like($err, qr/Access denied/, 'with the server\'s access denied');

($rc, $out, $err) = client($my, 'app', 'se cret%', "SHOW STATUS LIKE 'Ssl_cipher'\n",
	'--ssl', "--ssl-ca=" . $my->ssl_ca, '--ssl-verify-server-cert');
is($rc, 0, 'TLS verifying the harness\'s CA and the name 127.0.0.1') or diag($err);
like($out, qr/^Ssl_cipher\t\S+/, 'and the session is encrypted');

eval { $my->sql('SELECT * FROM no_such_table', database => 'appdb') };
like($@, qr/doesn't exist/, 'sql() dies with the client\'s error');

my $other = MariaDB->new('second');
$other->init;
$other->start;
isnt($other->port, $port, 'a second server gets another port');
is($other->sql('SELECT 1'), "1\n", 'and answers');
$other->stop;
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $other->port, Timeout => 2),
	'stop: nothing listens on its port any more');

$my->restart;
is($my->sql('SELECT SUM(i) FROM appdb.t'), "3\n", 'restart keeps the data');
is($my->port, $port, 'and the port');

$my->sql('INSERT INTO appdb.t VALUES (3)');
$my->kill9;
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 2),
	'kill9: it is gone');
$my->start;
is($my->sql('SELECT SUM(i) FROM appdb.t'), "6\n", 'start after kill9 recovers a committed row');
($rc, $out, $err) = client($my, 'app', 'se cret%', "SELECT 1\n");
is($rc, 0, 'and the user logs in again') or diag($err);

$my->stop;
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 2),
	'stop: nothing listens on its port any more');

done_testing();
