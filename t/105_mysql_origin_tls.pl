# The agent's connections to a MySQL origin over TLS, per the config's
# sslmode (ssl-mode in the mysql:// string): REQUIRED encrypts, VERIFY_IDENTITY
# with the origin's CA encrypts and verifies, a CA that did not sign the
# origin's certificate fails the login (the client is told, the agent goes
# on), DISABLED stays in the clear, and an origin without TLS is refused
# when TLS is required; a config given another CA while the agent runs uses
# it for its next connections. What the origin says of each session (Ssl_cipher)
# is read through the agent.
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use MariaDB;

my $PW = 'my-Tls-pw3';
my $my = MariaDB->new('origin_tls');
$my->init(ssl => 1);
$my->start;
my $plain = MariaDB->new('origin_plain');
$plain->init;
$plain->start;
for my $m ($my, $plain)
{
	$m->create_app_db($PW);
}
my $other_ca = MariaDB->new('other_ca');
$other_ca->init(ssl => 1);

my $url = "mysql://app:$PW\@127.0.0.1:" . $my->port . '/shopdb';
my $myport = PostgreSQL::Test::Cluster::get_free_port();
my $agent = hd_agent(name => 'mysql_origin_tls', bail => 1,
	settings => "mysql_listen_port = $myport\nlog_level = debug\n",
	configs => [
		[ 'create required', 'required', "--connection-string=$url?ssl-mode=REQUIRED" ],
		[ 'create verified', 'verified',
			"--connection-string=$url?ssl-mode=VERIFY_IDENTITY&ssl-ca=" . $my->ssl_ca ],
		[ 'create wrongca', 'wrongca',
			"--connection-string=$url?ssl-mode=VERIFY_CA&ssl-ca=" . $other_ca->ssl_ca ],
		[ 'create disabled', 'disabled', "--connection-string=$url?ssl-mode=DISABLED" ],
		[ 'create notls', 'notls', "--connection-string=mysql://app:$PW\@127.0.0.1:"
			  . $plain->port . '/shopdb?ssl-mode=REQUIRED' ],
	]);

# One statement through the agent as config $cfg: (exit status, output)
sub through
{
	my ($cfg, $sql) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'mariadb', '-h', '127.0.0.1', '-P', $myport, '-u', 'app', "-p$PW", '--batch',
		  '--skip-column-names', '--skip-ssl', '-e', $sql, $cfg ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(30));
	return ($? >> 8, $o . $e);
}

my $cipher = q{SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'};
my ($rc, $out) = through('required', $cipher);
like($out, qr/^TLS_\w+|^ECDHE|^[A-Z0-9-]+$/, 'REQUIRED: the origin session is encrypted') or diag($out);
isnt($out, "\n", 'with a cipher');
($rc, $out) = through('verified', $cipher);
like($out, qr/\S/, 'VERIFY_IDENTITY with the origin\'s CA: encrypted and verified') or diag($out);
is((through('verified', 'SELECT DATABASE()'))[1], "shopdb\n", 'and the session is in the config\'s database');
($rc, $out) = through('disabled', $cipher);
is($out, "\n", 'DISABLED: in the clear');
($rc, $out) = through('wrongca', 'SELECT 1');
isnt($rc, 0, 'VERIFY_CA with a CA that did not sign the origin\'s certificate: the statement fails');
like($out, qr/TLS with the origin failed|certificate verify failed/i, 'saying why') or diag($out);
($rc, $out) = through('notls', 'SELECT 1');
isnt($rc, 0, 'REQUIRED against an origin without TLS: fails');
like($out, qr/does not offer TLS/, 'saying so') or diag($out);
# the CA changed while the agent runs: new connections use it, no restart
hd_cli($agent->{ini}, 'update wrongca: the origin\'s own CA', 'update', 'wrongca',
	"--connection-string=$url?ssl-mode=VERIFY_CA&ssl-ca=" . $my->ssl_ca);
ok(wait_for(sub { (through('wrongca', 'SELECT 1'))[1] eq "1\n" }, 30),
	'after `hyperdrive update` gives it the right CA, the same config logs in (no restart)');
($rc, $out) = through('required', 'SELECT 42');
is($out, "42\n", 'and the agent serves on');
unlike(slurp_from($agent->{log}, 0), qr/$PW/, 'no password in the log');
$agent->signal('TERM');
$agent->finish;
done_testing();
