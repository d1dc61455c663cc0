# caching_sha2_password towards MySQL clients when the agent's greeting asks
# for it (mysql_auth_plugin = caching_sha2_password, docs/mysql.md "Logins"):
# the fast path for the config's user, whose password the agent knows, and
# the full authentication for another user, whose hash the agent looked up:
# the password over TLS, or encrypted with the agent's RSA key on a plain
# connection. The checks run in t/mysql_sha2_full.py (PyMySQL).
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

system('/usr/bin/python3', '-c', 'import pymysql, cryptography') == 0
  or plan skip_all => 'PyMySQL or cryptography is not installed (python3-pymysql, python3-cryptography)';

my $PW = 'my-Sha2-pw1';
my $BOB = 'bob-Sha2-pw2';
my $my = MariaDB->new('sha2');
$my->init;
$my->start;
$my->create_app_db($PW);
$my->sql(qq{GRANT SELECT ON mysql.global_priv TO 'app'\@'127.0.0.1';
	CREATE USER 'bob'\@'127.0.0.1' IDENTIFIED BY '$BOB'; GRANT SELECT ON shopdb.* TO 'bob'\@'127.0.0.1';});

my $certdir = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('mysql_sha2_tls'));
IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=localhost', '-keyout', "$certdir/key.pem", '-out', "$certdir/cert.pem" ],
	'<', \undef, '>', \my $ignored, '2>&1') or die 'openssl failed';
chmod 0600, "$certdir/key.pem";
my $myport = PostgreSQL::Test::Cluster::get_free_port();
my $agent = hd_agent(name => 'mysql_sha2', bail => 1,
	settings => "mysql_listen_port = $myport\nmysql_auth_plugin = caching_sha2_password\n"
	  . "tls_cert_file = $certdir/cert.pem\ntls_key_file = $certdir/key.pem\nlog_level = debug\n",
	configs => [ [ 'create shop', 'shop', "--connection-string=mysql://app:$PW\@127.0.0.1:"
		  . $my->port . '/shopdb' ] ]);

my ($out, $err) = ('', '');
local $ENV{AGENT_PORT} = $myport;
local $ENV{PW} = $PW;
local $ENV{BOB_PW} = $BOB;
local $ENV{CONFIG} = 'shop';
IPC::Run::run([ '/usr/bin/python3', dirname(__FILE__) . '/mysql_sha2_full.py' ],
	'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
my $n = 0;
for my $line (split /\n/, $out)
{
	next unless $line =~ /^(not )?ok - (.*)$/;
	ok(!$1, $2);
	$n++;
}
like($out, qr/^done$/m, 'the checks ran to the end') or diag($err);
is($n, 8, 'all of them');

# the MariaDB client as the other user, over TLS (its caching_sha2_password plugin)
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'mariadb', '-h', '127.0.0.1', '-P', $myport, '-u', 'bob', "-p$BOB", '--batch',
		  '--skip-column-names', '--ssl', '--ssl-verify-server-cert=0', '-e', 'SELECT CURRENT_USER()',
		  'shop' ], '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(30));
	is($o, "bob\@127.0.0.1\n", 'the mariadb client as another user over TLS') or diag($e);
}
my $log = slurp_from($agent->{log}, 0);
unlike($log, qr/\Q$PW\E|\Q$BOB\E/, 'no password in the log');
ok(wait_for(sub { $agent->alive }, 1), 'the agent is still running');
$agent->signal('TERM');
$agent->finish;
done_testing();
