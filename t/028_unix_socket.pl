# The agent's Unix-domain socket (unix_socket_dir): it listens on
# DIR/.s.PGSQL.<listen_port> next to TCP, so that psql -h DIR and
# socket-only drivers work. Covers: queries and transactions through the
# socket, a cancel request sent over it, clients logged as unix(PID), a
# stale socket file removed at start, a live one (another agent) or a file
# that is not a socket refused and left alone, the file removed at exit
# (SIGTERM and SIGINT), bad values of the setting, and an SSLRequest on the
# socket answered N (as PostgreSQL) while TCP clients get TLS.
#
# Needs agent/hyperdrive (make agent) and openssl.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::UNIX;
use IPC::Run;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'unix-pw-28';

my $node = start_origin('origin');
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'; CREATE DATABASE app OWNER app");
$node->safe_psql('app', 'CREATE TABLE items (id int); ALTER TABLE items OWNER TO app');

my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_unix'));
# socket paths are short (sun_path): a directory of its own under /tmp
my $sockdir = PostgreSQL::Test::Utils::tempdir_short();
my $logdir = $PostgreSQL::Test::Utils::log_path;
my $aport = PostgreSQL::Test::Cluster::get_free_port();
my $sock = "$sockdir/.s.PGSQL.$aport";

# An agent (not started) under $tmp/NAME listening on $addr ('' for no
# listen_addr) and $port, with log_level = info and $settings.
sub agent_setup
{
	my ($name, $addr, $port, $settings, %o) = @_;
	return hd_agent(dir => "$tmp/$name", addr => $addr, port => $port,
		settings => "log_level = info\n$settings", start => 0, %o);
}

# client TLS on, to see that the socket does not offer it
my $sslout = '';
IPC::Run::run([ 'openssl', 'req', '-new', '-x509', '-nodes', '-days', '2', '-newkey', 'ec',
		'-pkeyopt', 'ec_paramgen_curve:prime256v1', '-subj', '/CN=localhost',
		'-keyout', "$tmp/agent.key", '-out', "$tmp/agent.crt" ], '<', \undef, '>', \$sslout,
	'2>&1') or die "openssl: $sslout";
chmod 0600, "$tmp/agent.key";
my $log = "$logdir/028_unix_socket_agent.log";
my $first = agent_setup('a', '127.0.0.1', $aport, "unix_socket_dir = $sockdir\n"
	  . "tls_cert_file = $tmp/agent.crt\ntls_key_file = $tmp/agent.key\n", log => $log,
	configs => [ [ 'create app', 'app',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app", '--sslmode', 'disable',
		'--caching-disabled' ] ]);

# psql through the socket: (exit status, stdout, stderr)
sub psql_unix
{
	my (@sql) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $PW;
	IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-h', $sockdir, '-p', $aport, '-U', 'app',
			'-d', 'app', map { ('-c', $_) } @sql ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# --- a stale socket file (its process died) is removed at start
{
	my $stale = IO::Socket::UNIX->new(Local => $sock, Listen => 1) or die "stale socket: $!";
	close $stale;
	ok(-S $sock, 'a stale socket file is there, nothing listening on it');
}
my $agent = $first->start;
ok($agent, 'the agent starts with unix_socket_dir') or BAIL_OUT('no agent');
like(slurp_from($log), qr/removed the stale Unix-domain socket file \Q$sock\E/,
	'it removed the stale file, and says so');
ok(-S $sock, "it listens on $sock");
is((stat $sock)[2] & 07777, 0777, 'mode 0777, as PostgreSQL\'s default unix_socket_permissions');

# --- queries and transactions
my ($rc, $out, $err) = psql_unix('SELECT 40 + 2');
is($out, "42\n", 'psql -h DIR -p PORT: a simple query') or diag($err);
($rc, $out, $err) = psql_unix('BEGIN', 'INSERT INTO items VALUES (1), (2)',
	'SELECT count(*) FROM items', 'ROLLBACK', 'SELECT count(*) FROM items');
is($out, "2\n0\n", 'a transaction, rolled back') or diag($err);
($rc, $out, $err) = psql_unix('BEGIN', 'INSERT INTO items VALUES (3)', 'COMMIT',
	'SELECT array_agg(id) FROM items');
is($out, "{3}\n", 'a transaction, committed') or diag($err);
is($node->safe_psql('app', 'SELECT count(*) FROM items'), '1', 'the origin has the row');

# --- the wire protocol over the socket, and a cancel request sent over it
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app', path => $sock);
my $c = w_login();
ok($c->{ready}, 'a raw client logs in over the socket (SCRAM)');
w_send($c, fmsg('Q', "SELECT pg_sleep(60)\0"));
ok(wait_for(sub { $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'") eq '1' }),
	'its query runs on the origin');
my $cc = w_connect(path => $sock);
ok(w_send($cc, cancel_packet($c->{pid}, $c->{key})), 'a cancel request over the socket');
my $r = w_result($c, 30);
is($r->{errors}[0]{C} // '', '57014', 'cancels the query (57014)');
is($r->{status} // '', 'I', 'and the session goes on');
is(w_query($c, 'SELECT 7')->{rows}[0][0], '7', 'with the next query');
w_close($c);

# --- TLS: offered over TCP, not on the socket (as PostgreSQL)
{
	my $tcp = w_connect(port => $aport);
	w_send($tcp, ssl_request());
	is(w_bytes($tcp, 1, 10), 'S', 'SSLRequest over TCP: S (client TLS is on)');
	close $tcp->{sock};
	my $local = w_connect(path => $sock);
	w_send($local, ssl_request());
	is(w_bytes($local, 1, 10), 'N', 'SSLRequest on the socket: N');
	my $l = w_login(conn => $local);
	ok($l->{ready}, 'and the client logs in there in the clear');
	w_close($l) if $l->{ready};
}

# --- how socket clients show in the log
{
	my $bad = w_login(password => 'wrong');
	is($bad->{error}{C} // '', '28P01', 'a wrong password over the socket: 28P01');
	ok(wait_for(sub { slurp_from($log) =~ /client unix\(\d+\) \(app\@app\): password authentication failed/ }),
		'the log names the client unix(PID)');
}

# --- a second agent on the same socket refuses to start, and leaves it alone
{
	my $ini2 = agent_setup('b', '127.0.0.2', $aport, "unix_socket_dir = $sockdir\n")->{ini};
	my ($rc2, $out2) = hd_agent_refuses(ini => $ini2);
	ok(defined $rc2 && $rc2 != 0, 'a second agent on the same socket (TCP on 127.0.0.2) exits');
	like($out2, qr/another process is listening on Unix-domain socket "\Q$sock\E"/,
		'saying that another process listens there') or diag($out2);
	($rc, $out) = psql_unix('SELECT 1');
	is($out, "1\n", 'the first agent\'s socket still works');
}

# --- a file that is not a socket is not removed
{
	my $port3 = PostgreSQL::Test::Cluster::get_free_port();
	write_file("$sockdir/.s.PGSQL.$port3", "not a socket\n");
	my $ini3 = agent_setup('c', '127.0.0.1', $port3, "unix_socket_dir = $sockdir\n")->{ini};
	my ($rc3, $out3) = hd_agent_refuses(ini => $ini3);
	ok(defined $rc3 && $rc3 != 0, 'a regular file at the socket path: the agent refuses to start');
	like($out3, qr/exists and is not a socket/, 'saying so') or diag($out3);
	ok(-f "$sockdir/.s.PGSQL.$port3", 'and leaves the file alone');
}

# --- bad values
for my $bad ([ 'relative/dir', qr/unix_socket_dir must be an absolute path/ ],
	[ '/' . ('d' x 100), qr/unix_socket_dir must be an absolute path \(starting with \/\) of at most 92 bytes/ ])
{
	my $ini4 = agent_setup('d', '', $aport, "unix_socket_dir = $bad->[0]\n")->{ini};
	my ($rc4, $out4) = hd_agent_refuses(ini => $ini4);
	ok(defined $rc4 && $rc4 != 0, "unix_socket_dir = $bad->[0]: refused");
	like($out4, $bad->[1], 'with what it must be') or diag($out4);
}

# --- the file is removed at exit: SIGTERM (drain), SIGINT
$agent->signal('TERM');
$agent->finish;
is($agent->result(0), 0, 'SIGTERM: the agent exits');
ok(!-e $sock, 'and removes its socket file');

$agent = $first->start;
ok($agent && -S $sock, 'started again: the socket is back');
$agent->signal('INT');
$agent->finish;
ok(!-e $sock, 'SIGINT: removed too');

$node->stop;
done_testing();
