# Logins of other origin users through the agent (docs/mysql.md, "Logins"):
# the agent reads the user's mysql_native_password hash on the origin as the
# config's user (agent/mywire/my_lookup.c, a non-blocking control
# connection), checks the client's scramble against it, and its pool logs
# in to the origin as that user. Against a throwaway MariaDB: the right
# password logs in as that user, a wrong one and an unknown user get the
# same 1045, accounts the agent cannot check (ed25519, host rows that
# differ, locked) are refused and the log says why, an account without a
# password, odd names, a password change, a lookup held by a lock while
# other clients go on, COM_CHANGE_USER to another user, the origin
# restarted under the control connection, and the config's user without
# the grant (the log names the GRANT) or with MariaDB's mysql.user view
# instead.
# The checks run in t/mysql_lookup.py (PyMySQL); each line it prints is one
# test here.
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

system('/usr/bin/python3', '-c', 'import pymysql') == 0
  or plan skip_all => 'PyMySQL is not installed (Debian: apt-get install python3-pymysql)';

my $PW = 'my-Lookup-pw3';
my $my = MariaDB->new('lookup');
$my->init;
$my->start;
# the config's user, with the grant the lookup needs
$my->sql(qq{CREATE DATABASE shopdb; CREATE TABLE shopdb.items (id int); INSERT INTO shopdb.items VALUES (1), (2);
	CREATE USER 'app'\@'127.0.0.1' IDENTIFIED BY '$PW'; GRANT ALL ON shopdb.* TO 'app'\@'127.0.0.1';
	GRANT SELECT ON mysql.global_priv TO 'app'\@'127.0.0.1';});
# other users: each can read shopdb
my @users = (
	q{'bob'@'%' IDENTIFIED BY 'bob-pw'}, q{'bob'@'127.0.0.1' IDENTIFIED BY 'bob-pw'},
	q{'dave'@'%' IDENTIFIED BY 'dave-1'}, q{'dave'@'127.0.0.1' IDENTIFIED BY 'dave-2'},
	q{'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw')},
	q{'locked'@'%' IDENTIFIED BY 'locked-pw' ACCOUNT LOCK},
	q{'carol'@'%'},
	q{'o\'b\\\\r'@'%' IDENTIFIED BY 'quote-pw'},
	q{'zoë'@'%' IDENTIFIED BY 'zoe-pw'},
	q{'frank'@'%' IDENTIFIED BY 'frank-pw'}, q{'gina'@'%' IDENTIFIED BY 'gina-pw'},
	q{'henry'@'%' IDENTIFIED BY 'henry-pw'});
my $sql = "SET NAMES utf8mb4; INSTALL SONAME 'auth_ed25519';\n";
for my $u (@users)
{
	my ($account) = $u =~ /^('(?:[^'\\]|\\.)*'\@'[^']*')/ or die "no account in $u";
	$sql .= "CREATE USER $u; GRANT SELECT ON shopdb.* TO $account;\n";
}
$my->sql($sql);
is($my->sql(q{SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'o''b\\\\r'}), "1\n",
	'the name with a quote and a backslash is what the test means');

my $myport = PostgreSQL::Test::Cluster::get_free_port();
my $agent = hd_agent(name => 'mysql_lookup', bail => 1,
	# the lock below holds a lookup: it must not time out meanwhile
	settings => "mysql_listen_port = $myport\nserver_connect_timeout = 120\nlog_level = debug\n",
	configs => [ [ 'create shop', 'shop', '--connection-string=mysql://app:' . $PW . '@127.0.0.1:'
		  . $my->port . '/shopdb' ] ]);

local $ENV{AGENT_PORT} = $myport;
local $ENV{ORIGIN_SOCKET} = $my->socket;
local $ENV{PW} = $PW;
local $ENV{CONFIG} = 'shop';

# Runs the checks of one phase; each of its lines is a test.
sub phase
{
	my ($name, $min) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ '/usr/bin/python3', dirname(__FILE__) . '/mysql_lookup.py', $name ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	my $checks = 0;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^(not )?ok - (.*)$/)
		{
			ok(!$1, $2);
			$checks++;
		}
	}
	like($out, qr/^done$/m, "$name: the checks ran to the end") or diag($err);
	cmp_ok($checks, '>=', $min, "$name: all of them");
	return;
}

phase('before', 27);
my $log = slurp_from($agent->{log}, 0);
like($log, qr/no account of user "nobody" on the origin/, 'the log says the user is unknown');
like($log, qr/user "ed" authenticates with ed25519, which cannot be checked by a proxy: refused/,
	'the log says an ed25519 account cannot be checked by a proxy');
like($log, qr/user "dave" has accounts for several hosts that differ/,
	'and why the host rows that differ are refused');
like($log, qr/user "locked": the account is locked/, 'and that the account is locked');

my $offset = -s $agent->{log};
$my->restart;
phase('after', 5);
$log = slurp_from($agent->{log}, $offset);
like($log, qr/the password-lookup connection was lost .*: reconnecting/,
	'the control connection the restart dropped was reopened for the lookup');
like($log, qr/cannot read the password hashes other users' logins need \(SELECT command denied.*\): run as an administrator GRANT SELECT ON mysql\.global_priv TO 'app'\@'HOST'/,
	'without the grant, the log names the GRANT to run');

$log = slurp_from($agent->{log}, 0);
unlike($log, qr/\Q$PW\E|bob-pw|bob-new|henry-pw|frank-pw/, 'no password in the log');
ok($agent->alive, 'the agent is still running');
$agent->signal('TERM');
$agent->finish;
done_testing();
