# MySQL clients pooled through the agent (docs/mysql.md) against a throwaway
# MariaDB, with one origin connection for every client (origin limit 1,
# transaction pooling) so that every session's statements run on the
# connection another session used just before: settings, the database,
# autocommit, transactions, the previous statement's diagnostics, user
# variables (a pin), a procedure that changes the session (the origin's
# state-change flag pins it), a client killed mid-transaction, bad input.
# The checks run in t/mysql_pooling.py (PyMySQL, which can hold two sessions
# and a direct connection at once); each line it prints is one test here.
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

system('/usr/bin/python3', '-c', 'import pymysql') == 0
  or plan skip_all => 'PyMySQL is not installed (Debian: apt-get install python3-pymysql)';

my $PW = 'my-Pool-pw7';
my $my = MariaDB->new('pooling');
$my->init;
$my->start;
$my->create_app_db($PW);

my $myport = PostgreSQL::Test::Cluster::get_free_port();
# client-facing TLS: a self-signed certificate
my $certdir = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('mysql_pooling_tls'));
IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=localhost', '-keyout', "$certdir/key.pem", '-out', "$certdir/cert.pem" ],
	'<', \undef, '>', \my $ignored, '2>&1') or die 'openssl failed';
chmod 0600, "$certdir/key.pem";
my $agent = hd_agent(name => 'mysql_pooling', bail => 1,
	settings => "mysql_listen_port = $myport\nquery_wait_timeout = 2\nlog_level = debug\n"
	  . "tls_cert_file = $certdir/cert.pem\ntls_key_file = $certdir/key.pem\n",
	configs => [ [ 'create shop', 'shop', '--connection-string=mysql://app:' . $PW . '@127.0.0.1:'
		  . $my->port . '/shopdb', '--origin-connection-limit', '1' ] ]);

my ($out, $err) = ('', '');
local $ENV{AGENT_PORT} = $myport;
local $ENV{ORIGIN_PORT} = $my->port;
local $ENV{PW} = $PW;
local $ENV{CONFIG} = 'shop';
local $ENV{DB} = 'shopdb';
IPC::Run::run([ '/usr/bin/python3', dirname(__FILE__) . '/mysql_pooling.py' ],
	'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
my $checks = 0;
for my $line (split /\n/, $out)
{
	if ($line =~ /^(not )?ok - (.*)$/)
	{
		ok(!$1, $2);
		$checks++;
	}
}
like($out, qr/^done$/m, 'the checks ran to the end') or diag($err);
cmp_ok($checks, '>=', 30, 'all of them');
ok($agent->alive, 'the agent is still running');

# Connector/C's prepared statements: each session's own parameter types
{
	my $bin = "$certdir/mysql_stmt_client";
	my ($cc_out, $cc_err) = ('', '');
	my $flags = `mariadb_config --cflags --libs`;
	$flags =~ s/\s+/ /g;
	IPC::Run::run([ 'sh', '-c', 'gcc -o "$0" "$1" ' . $flags, $bin,
			dirname(__FILE__) . '/../tests/mysql_stmt_client.c' ],
		'<', \undef, '>', \$cc_out, '2>', \$cc_err) or die "cannot build mysql_stmt_client: $cc_err";
	my ($o, $e) = ('', '');
	IPC::Run::run([ $bin, '127.0.0.1', $myport, 'app', $PW, 'shop' ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(60));
	my $n = 0;
	for my $line (split /\n/, $o)
	{
		next unless $line =~ /^(not )?ok - (.*)$/;
		ok(!$1, "Connector/C: $2");
		$n++;
	}
	like($o, qr/^done$/m, 'Connector/C: the statement checks ran to the end') or diag($e);
	is($n, 7, 'Connector/C: all of them');
}

# The MariaDB client: TLS, and caching_sha2_password (its fast path, the
# agent knowing the config's password), asked for by the client
sub cli
{
	my ($pw, @args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'mariadb', '-h', '127.0.0.1', '-P', $myport, '-u', 'app', "-p$pw", '--batch',
		  '--skip-column-names', @args, 'shop' ], '<', \undef, '>', \$o, '2>', \$e,
		IPC::Run::timeout(30));
	return ($? >> 8, $o . $e);
}
my ($rc, $text) = cli($PW, '--ssl', '--ssl-verify-server-cert=0', '-e', 'status');
like($text, qr/SSL:\s+Cipher in use is TLS/, 'TLS: the client\'s connection to the agent is encrypted')
  or diag($text);
($rc, $text) = cli($PW, '--skip-ssl', '-e', 'status');
like($text, qr/SSL:\s+Not in use/, 'and without --ssl it is not');
for my $tls ([ 'plain', '--skip-ssl' ], [ 'TLS', '--ssl', '--ssl-verify-server-cert=0' ])
{
	my ($how, @tls) = @$tls;
	($rc, $text) = cli($PW, @tls, '--default-auth=caching_sha2_password', '-e', "SELECT 'sha2 in'");
	is($text, "sha2 in\n", "caching_sha2_password ($how): the right password logs in");
	($rc, $text) = cli('wrong-pw', @tls, '--default-auth=caching_sha2_password', '-e', 'SELECT 1');
	like($text, qr/ERROR 1045 \(28000\)/, "caching_sha2_password ($how): a wrong one is refused");
}
my $log = slurp_from($agent->{log}, 0);
like($log, qr/pinned to its origin connection: a user variable/, 'the pin is logged with its reason');
like($log, qr/pinned to its origin connection: the origin reports a change of session state/,
	'and the one the origin reported');
like($log, qr/pinned to its origin connection: COM_SET_OPTION/, 'and COM_SET_OPTION\'s');
like($log, qr/MySQL origin connection \d+ closed: it must not be reused/,
	'the connection COM_SET_OPTION changed is closed, not reused');
unlike($log, qr/$PW/, 'no password in the log');
$agent->signal('TERM');
$agent->finish;
done_testing();
