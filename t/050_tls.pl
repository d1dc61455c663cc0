# TLS: clients to the agent, and the agent to the origin.
#
# A throwaway CA and certificates are made with the openssl command in the
# test's temporary directory (nothing is committed): a CA, a second CA that
# signed nothing we use ("wrong CA"), a certificate for the agent (CN
# localhost, SAN localhost and 127.0.0.1) and one for the origin (CN and SAN
# localhost only). Two origins: "tls" (ssl = on, hostssl lines only, so that
# every connection to it is encrypted) and "plain" (ssl = off). One agent
# with tls_cert_file/tls_key_file and one config per case; a second agent
# without TLS.
#
# Checks: psql verify-full to the agent, and its failure with the wrong CA;
# the agent to the origin with verify-full, verify-ca and require (the
# origin's pg_stat_ssl says ssl = t); require to an origin without SSL
# (08001); verify-full with a host name the certificate does not have; a
# wrong CA; prefer to an origin without SSL; the SSLRequest followed by
# unencrypted bytes (08P01, CVE-2021-23214); GSSENCRequest answered 'N'; a
# large result through both TLS legs; pgbench -M extended over TLS on both
# sides; refusal to start with a missing or mismatched certificate; a reload
# with a bad pair keeping the old one; the agent without TLS answering 'N'.
#
# Needs agent/hyperdrive (make agent), openssl, psql and pgbench. Run with
# make tempcheck-tap, or
#   prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl t/050_tls.pl
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
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
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('tls'));

# ---------------------------------------------------------------------------
# Certificates, made now, in $tmp.

sub openssl
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'openssl', @_ ], '<', \undef, '>', \$out, '2>', \$err)
	  or die "openssl @_ failed: $err";
}

sub make_ca
{
	my ($name) = @_;
	openssl('req', '-new', '-x509', '-nodes', '-days', '2', '-newkey', 'ec',
		'-pkeyopt', 'ec_paramgen_curve:prime256v1', '-subj', "/CN=hyperdrive test $name",
		'-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign',
		'-keyout', "$tmp/$name.key", '-out', "$tmp/$name.crt");
	chmod 0600, "$tmp/$name.key";
}

sub make_cert
{
	my ($name, $ca, $cn, $san) = @_;
	write_file("$tmp/$name.ext",
		"subjectAltName = $san\nbasicConstraints = CA:FALSE\n"
		  . "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n");
	openssl('req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt',
		'ec_paramgen_curve:prime256v1', '-subj', "/CN=$cn",
		'-keyout', "$tmp/$name.key", '-out', "$tmp/$name.csr");
	openssl('x509', '-req', '-in', "$tmp/$name.csr", '-CA', "$tmp/$ca.crt",
		'-CAkey', "$tmp/$ca.key", '-set_serial', int(rand(1 << 30)), '-days', '2',
		'-extfile', "$tmp/$name.ext", '-out', "$tmp/$name.crt");
	chmod 0600, "$tmp/$name.key";
}

make_ca('ca');
make_ca('wrong_ca');
make_cert('agent', 'ca', 'localhost', 'DNS:localhost, IP:127.0.0.1');
make_cert('origin', 'ca', 'localhost', 'DNS:localhost');
make_cert('other', 'wrong_ca', 'localhost', 'DNS:localhost');
ok(-s "$tmp/agent.crt" && -s "$tmp/origin.crt", 'certificates made with openssl');

# ---------------------------------------------------------------------------
# The origins.
my $password = 'app-Secret-9';

sub make_origin
{
	my ($name, $ssl) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
	$node->append_conf('postgresql.conf', <<"EOF");
listen_addresses = 'localhost'
password_encryption = 'scram-sha-256'
max_connections = 40
autovacuum = off
EOF
	my $type = 'host';
	if ($ssl)
	{
		$node->append_conf('postgresql.conf', <<"EOF");
ssl = on
ssl_cert_file = '$tmp/origin.crt'
ssl_key_file = '$tmp/origin.key'
EOF
		$type = 'hostssl';
	}
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\n$type all all 127.0.0.1/32 scram-sha-256\n"
	  . "$type all all ::1/128 scram-sha-256\n";
	close $hba;
	$node->start;
	$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$password'; "
		  . "CREATE DATABASE app OWNER app;");
	return $node;
}

my $tls_origin = make_origin('tls_origin', 1);
my $plain_origin = make_origin('plain_origin', 0);
$tls_origin->command_ok(
	[ 'pgbench', '-i', '-q', '-s', '1', '-U', 'app', '-h', $tls_origin->host,
		'-p', $tls_origin->port, 'app' ],
	'pgbench -i on the TLS origin');

# ---------------------------------------------------------------------------
# The agent, with TLS, and its configs.
my $agent_port = PostgreSQL::Test::Cluster::get_free_port();
my $ini = "$tmp/hyperdrive.ini";
my $agent_log = "$tmp/agent.log";

# An agent (not started) with its settings file at $path (state_dir
# $tmp/state, shared), listening on $port, TLS settings $tls.
sub agent_at
{
	my ($path, $port, $tls, $log) = @_;
	my $a = hd_agent(dir => $tmp, ini => $path, port => $port, log => $log, start => 0);
	write_ini($a, $tls);
	return $a;
}

# Rewrites its settings file, with TLS settings $tls.
sub write_ini
{
	my ($a, $tls) = @_;
	$a->{settings} = "log_level = debug\nquery_wait_timeout = 30\nserver_login_retry = 50ms\n"
	  . ($tls // '');
	$a->write_settings;
}
my $agent_tls = "tls_cert_file = $tmp/agent.crt\ntls_key_file = $tmp/agent.key\n";
my $agent_proc = agent_at($ini, $agent_port, $agent_tls, $agent_log);

sub hd_create
{
	my ($name, $origin, $host, @opts) = @_;
	my ($out, $err) = ('', '');
	my $url = "postgresql://app:$password\@$host:" . $origin->port . '/app';
	my $ok = IPC::Run::run([ $agent, 'create', $name, '-c', $ini, "--connection-string=$url",
			@opts ], '<', \undef, '>', \$out, '2>', \$err);
	ok($ok, "hyperdrive create $name @opts") or diag($err);
}

hd_create('full', $tls_origin, 'localhost', '--sslmode', 'verify-full', '--sslrootcert',
	"$tmp/ca.crt");
hd_create('ca', $tls_origin, '127.0.0.1', '--sslmode', 'verify-ca', '--sslrootcert',
	"$tmp/ca.crt");
hd_create('req', $tls_origin, '127.0.0.1', '--sslmode', 'require');
hd_create('mismatch', $tls_origin, '127.0.0.1', '--sslmode', 'verify-full', '--sslrootcert',
	"$tmp/ca.crt");
hd_create('wrongca', $tls_origin, 'localhost', '--sslmode', 'verify-ca', '--sslrootcert',
	"$tmp/wrong_ca.crt");
hd_create('plainreq', $plain_origin, '127.0.0.1', '--sslmode', 'require');
hd_create('plainpref', $plain_origin, '127.0.0.1', '--sslmode', 'prefer');
hd_create('tlsdisable', $tls_origin, '127.0.0.1', '--sslmode', 'disable');
hd_create('one', $tls_origin, 'localhost', '--sslmode', 'verify-full', '--sslrootcert',
	"$tmp/ca.crt", '--origin-connection-limit', '1');

sub port_open
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
	return 0 unless $sock;
	close $sock;
	return 1;
}

# Starts an agent; returns it once it listens.
sub start_agent
{
	my ($a) = @_;
	BAIL_OUT("the agent did not start:\n" . slurp_from($a->{log})) unless $a->start;
	return $a;
}

# The agent refuses to start with a certificate it cannot use.
{
	my $bad = "$tmp/bad.ini";
	my $port = PostgreSQL::Test::Cluster::get_free_port();

	agent_at($bad, $port, "tls_cert_file = $tmp/missing.crt\ntls_key_file = $tmp/agent.key\n");
	my ($rc, $err) = hd_agent_refuses(ini => $bad);
	is($rc, 1, 'missing certificate file: exit 1');
	like($err, qr{could not load TLS certificate file "\Q$tmp\E/missing\.crt": No such file},
		'missing certificate file: named in the message');

	agent_at($bad, $port, "tls_cert_file = $tmp/agent.crt\ntls_key_file = $tmp/other.key\n");
	($rc, $err) = hd_agent_refuses(ini => $bad);
	is($rc, 1, 'key of another certificate: exit 1');
	like($err, qr{TLS private key file "\Q$tmp\E/other\.key" does not match certificate file "\Q$tmp\E/agent\.crt"},
		'key of another certificate: says which files');

	chmod 0644, "$tmp/other.key";
	agent_at($bad, $port, "tls_cert_file = $tmp/other.crt\ntls_key_file = $tmp/other.key\n");
	($rc, $err) = hd_agent_refuses(ini => $bad);
	is($rc, 1, 'world-readable key: exit 1');
	like($err, qr{TLS private key file "\Q$tmp\E/other\.key" has group or world access},
		'world-readable key: refused like PostgreSQL does');
	chmod 0600, "$tmp/other.key";
	ok(!port_open($port), 'nothing listens after a refused start');
}

start_agent($agent_proc);

# ---------------------------------------------------------------------------
# Helpers.

# psql to the agent: (exit status, stdout, stderr). $conn: extra conninfo.
sub psql_agent
{
	my ($port, $dbname, $conn, @args) = @_;
	local $ENV{PGPASSWORD} = $password;
	local $ENV{PGCONNECT_TIMEOUT} = 20;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-At', '-d',
			"host=localhost hostaddr=127.0.0.1 port=$port dbname=$dbname user=app $conn", @args
		],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return ($? >> 8, $out, $err);
}

my $full = "sslmode=verify-full sslrootcert=$tmp/ca.crt";

# The origin's view of the agent's connections (role app): "t" / "f" each.
sub origin_ssl
{
	my ($node) = @_;
	return $node->safe_psql('app',
		"SELECT string_agg(CASE WHEN s.ssl THEN 't' ELSE 'f' END, ',') FROM pg_stat_ssl s "
		  . "JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'app'");
}

# A raw connection: sends $bytes, returns everything read until EOF (or 1 s
# of silence, or 10 s, or $want bytes).
sub raw_exchange
{
	my ($port, $bytes, $want) = @_;
	my $c = w_connect(port => $port) or die "connect: $!";
	w_send($c, $bytes);
	my $got = w_drain($c, want => $want);
	close $c->{sock};
	return $got;
}

# ErrorResponse fields of the first message of $bytes: { C => ..., M => ... }.
sub error_fields
{
	my ($first) = split_msgs($_[0]);
	return {} unless $first && $first->[0] eq 'E';
	return err_fields($first->[1]);
}

my $ssl_request = ssl_request();
my $gss_request = gssenc_request();

# ---------------------------------------------------------------------------
# Clients to the agent.
{
	my ($rc, $out, $err) =
	  psql_agent($agent_port, 'full', $full, '-c', '\conninfo', '-c', 'SELECT 40 + 2');
	is($rc, 0, 'psql verify-full to the agent (CA, host localhost) works') or diag($err);
	like($out, qr/SSL connection \(protocol: TLSv1\.[23]/, '\conninfo: an SSL connection');
	like($out, qr/^42$/m, 'the query ran through TLS');

	($rc, $out, $err) = psql_agent($agent_port, 'req', 'sslmode=require', '-c', 'SELECT 1');
	is($rc, 0, 'psql sslmode=require to the agent works') or diag($err);

	($rc, $out, $err) = psql_agent($agent_port, 'full',
		"sslmode=verify-full sslrootcert=$tmp/wrong_ca.crt", '-c', 'SELECT 1');
	isnt($rc, 0, 'psql verify-full with the wrong CA fails');
	like($err, qr/certificate verify failed/, 'the client says the certificate did not verify');
	ok(wait_for(sub { slurp_from($agent_log) =~ /could not accept SSL connection: .*(unknown ca|alert)/ }),
		'the agent logs the failed handshake');

	($rc, $out, $err) = psql_agent($agent_port, 'full', 'sslmode=disable', '-c', 'SELECT 7');
	is($rc, 0, 'without TLS, clients still connect in the clear') or diag($err);
	is($out, "7\n", 'the query ran in the clear');
}

# SSLRequest then unencrypted bytes in the same packet: refused before 'S'.
{
	my $startup = startup_packet(_order => [ 'user', 'database' ], user => 'app', database => 'full');
	my $got = raw_exchange($agent_port, $ssl_request . $startup);
	my $f = error_fields($got);
	is($f->{C}, '08P01', 'SSLRequest + buffered data: 08P01');
	is($f->{M}, 'received unencrypted data after SSL request', 'SSLRequest + buffered data: message');
	unlike(substr($got, 0, 1), qr/S/, 'no S was sent');

	$got = raw_exchange($agent_port, $ssl_request, 1);
	is($got, 'S', 'SSLRequest alone: S');
	$got = raw_exchange($agent_port, $gss_request, 1);
	is($got, 'N', 'GSSENCRequest: N');
}

# ---------------------------------------------------------------------------
# The agent to the origin.
{
	my ($rc, $out, $err) = psql_agent($agent_port, 'full', $full, '-c',
		'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
	is($rc, 0, 'verify-full to the origin works') or diag($err);
	like($out, qr/^t\|TLSv1\.[23]$/, "the origin's pg_stat_ssl: the agent's connection is TLS");
	like(origin_ssl($tls_origin), qr/^t(,t)*$/, 'every agent connection to the TLS origin is TLS');

	($rc, $out, $err) = psql_agent($agent_port, 'ca', $full, '-c',
		'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
	is($rc, 0, 'verify-ca (host 127.0.0.1, not in the certificate) works') or diag($err);
	is($out, "t\n", 'verify-ca: TLS');

	($rc, $out, $err) = psql_agent($agent_port, 'req', $full, '-c',
		'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
	is($rc, 0, 'require without sslrootcert works') or diag($err);
	is($out, "t\n", 'require: TLS');

	my $offset = -s $agent_log;
	($rc, $out, $err) = psql_agent($agent_port, 'plainreq', $full, '-c', 'SELECT 1');
	isnt($rc, 0, 'require to an origin with ssl = off fails');
	like($err, qr/server does not support SSL, but SSL was required/, 'require: libpq\'s message');
	ok(wait_for(sub { slurp_from($agent_log, $offset) =~
		  /server does not support SSL, but SSL was required \(SQLSTATE 08001\)/ }),
		'require: the client got SQLSTATE 08001') or diag(slurp_from($agent_log, $offset));

	($rc, $out, $err) = psql_agent($agent_port, 'mismatch', $full, '-c', 'SELECT 1');
	isnt($rc, 0, 'verify-full with a host name the certificate lacks fails');
	like($err, qr/server certificate for "localhost" does not match host name "127\.0\.0\.1"/,
		'verify-full: libpq\'s mismatch message');

	($rc, $out, $err) = psql_agent($agent_port, 'wrongca', $full, '-c', 'SELECT 1');
	isnt($rc, 0, 'verify-ca against the wrong CA fails');
	like($err, qr/certificate verify failed/, 'wrong CA: certificate verify failed');

	($rc, $out, $err) = psql_agent($agent_port, 'plainpref', $full, '-c',
		'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
	is($rc, 0, 'prefer to an origin with ssl = off falls back to the clear') or diag($err);
	is($out, "f\n", 'prefer: not encrypted');

	($rc, $out, $err) = psql_agent($agent_port, 'tlsdisable', $full, '-c', 'SELECT 1');
	isnt($rc, 0, 'disable to an origin with hostssl lines only fails (no TLS tried)');
	like($err, qr/no pg_hba\.conf entry .* no encryption/, 'disable: the origin refused a plain connection');
}

# A large result through both TLS legs (many records, partial writes).
{
	my ($rc, $out, $err) = psql_agent($agent_port, 'full', $full, '-c',
		"SELECT md5(string_agg(repeat(i::text, 50), ',' ORDER BY i)), "
		  . "sum(length(repeat(i::text, 50))) FROM generate_series(1, 20000) i",
		'-c', "SELECT i, repeat('x', 500) FROM generate_series(1, 20000) i");
	is($rc, 0, 'a large result over TLS') or diag($err);
	my @lines = split /\n/, $out;
	my $expect = $tls_origin->safe_psql('app',
		"SELECT md5(string_agg(repeat(i::text, 50), ',' ORDER BY i)), "
		  . "sum(length(repeat(i::text, 50))) FROM generate_series(1, 20000) i");
	is($lines[0], $expect, 'the same result as directly from the origin');
	is(scalar(@lines), 20001, 'all 20000 rows came through');
	is($lines[-1], '20000|' . ('x' x 500), 'the last row is intact');
}

# A transaction that ends while its client is far behind, TLS on both legs:
# with more than 1 MB waiting for the client the agent stops reading the
# origin connection, and the reply that does it also ends the transaction
# and gives the connection back to the pool (config "one": one connection).
# It must read again there, or the next client's query is never answered.
# Client A is openssl s_client, not read from until B is done: its output
# pipe fills, it stops reading its socket, and A is behind whatever the timing.
{
	my $size = 16 * 1024 * 1024;
	my ($in, $out, $err) = ('', '', '');
	my $a = IPC::Run::start(
		[
			'openssl', 's_client', '-quiet', '-starttls', 'postgres',
			'-connect', "127.0.0.1:$agent_port", '-CAfile', "$tmp/ca.crt"
		],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
	# a PgWire connection over s_client's pipes
	my $conn = {
		buf => '',
		write => sub { $in .= $_[0]; $a->pump_nb; return 1; },
		fill => sub {
			$a->pump_nb;
			return substr($out, 0, length $out, '') if length $out;
			usleep(10_000);
			return '';
		},
	};

	# SCRAM-SHA-256 login as app to config "one"
	my $ready = w_login(conn => $conn, user => 'app', password => $password, db => 'one',
		params => { _order => [ 'user', 'database' ] }, timeout => 20)->{ready};
	ok($ready, 'slow client: A (s_client) logged in over TLS') or diag($err);
	w_send($conn, pq_query("SELECT repeat('x', $size)"));
	wait_for(sub { $a->pump_nb; length($in) == 0 }, 10);

	my ($rc, $got, $perr) =
	  eval { psql_agent($agent_port, 'one', $full, '-c', "SELECT 'b-after-a'") };
	$perr //= "psql: $@";
	is($got, "b-after-a\n",
		"slow client: B's query runs on the connection A's transaction gave back")
	  or diag("rc " . ($rc // "none") . ": $perr");

	my ($type, $body) = ('', '');
	($type, $body) = w_msg($conn, 60) while $type ne 'D' && $type ne 'TIMEOUT' && $type ne 'E';
	ok($type eq 'D' && length($body) == 6 + $size && substr($body, 6) eq 'x' x $size,
		'slow client: A then reads its 16 MB row intact');
	($type, $body) = w_msg($conn, 60) while $type ne 'Z' && $type ne 'TIMEOUT' && $type ne 'E';
	is($type, 'Z', 'slow client: and its ReadyForQuery');
	$a->kill_kill;
}

# A TLS 1.3 KeyUpdate (with a reply requested) before the StartupMessage:
# the agent reads through it and answers in the new keys.
{
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[
			'openssl', 's_client', '-starttls', 'postgres', '-tls1_3',
			'-connect', "127.0.0.1:$agent_port", '-CAfile', "$tmp/ca.crt"
		],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	wait_for(sub { $h->pump_nb; $out =~ /^---$/m && $out =~ /Verify return code: 0/ }, 10);
	like($out, qr/Verify return code: 0 \(ok\)/, 's_client: the agent\'s certificate verifies');
	$in .= "K\n";				# s_client: send a KeyUpdate, ask for one back
	ok(wait_for(sub { $h->pump_nb; $err =~ /KEYUPDATE/ }, 5), 's_client sent a KeyUpdate');
	usleep(300_000);
	$in .= startup_packet(_order => [ 'user', 'database' ], user => 'app', database => 'full');
	ok(wait_for(sub { $h->pump_nb; $out =~ /SCRAM-SHA-256/ }, 10),
		'after a KeyUpdate the agent answers the StartupMessage (AuthenticationSASL)')
	  or diag("$out\n$err");
	$h->kill_kill;
}

# pgbench, extended protocol, 8 clients, TLS on both sides.
{
	local $ENV{PGPASSWORD} = $password;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-M', 'extended', '-c', '8', '-j', '4', '-t', '150',
			"host=localhost hostaddr=127.0.0.1 port=$agent_port dbname=full user=app $full"
		],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	is($? >> 8, 0, 'pgbench -M extended -c 8 over TLS: exit 0') or diag("$out\n$err");
	like($out, qr/number of transactions actually processed: 1200\/1200/,
		'pgbench: every transaction processed');
	like($out, qr/number of failed transactions: 0 /, 'pgbench: zero failures');
	like(origin_ssl($tls_origin), qr/^t(,t)*$/, 'the pool\'s origin connections are all TLS');
}

# ---------------------------------------------------------------------------
# Reload: a bad pair keeps the old context.
{
	my $offset = -s $agent_log;
	write_ini($agent_proc, "tls_cert_file = $tmp/agent.crt\ntls_key_file = $tmp/other.key\n");
	$agent_proc->signal('HUP');
	ok(wait_for(sub { slurp_from($agent_log, $offset) =~
		  /reloading TLS failed, keeping the previous certificate and key: .*does not match/ }),
		'reload with a mismatched key: logged, old certificate kept')
	  or diag(slurp_from($agent_log, $offset));
	my ($rc, $out, $err) = psql_agent($agent_port, 'full', $full, '-c', 'SELECT 1');
	is($rc, 0, 'TLS still works with the previous certificate') or diag($err);

	# the agent's certificate replaced by one of the other CA: clients see it
	$offset = -s $agent_log;
	write_ini($agent_proc, "tls_cert_file = $tmp/other.crt\ntls_key_file = $tmp/other.key\n");
	$agent_proc->signal('HUP');
	ok(wait_for(sub { slurp_from($agent_log, $offset) =~ /TLS for clients: certificate .*other\.crt \(reloaded\)/ }),
		'reload with a good pair: new certificate');
	($rc, $out, $err) = psql_agent($agent_port, 'full', $full, '-c', 'SELECT 1');
	isnt($rc, 0, 'after the reload the old CA no longer verifies the agent');
	($rc, $out, $err) = psql_agent($agent_port, 'full',
		"sslmode=verify-full sslrootcert=$tmp/wrong_ca.crt", '-c', 'SELECT 1');
	is($rc, 0, 'and the new CA does') or diag($err);

	write_ini($agent_proc, $agent_tls);
	$agent_proc->signal('HUP');
	ok(wait_for(sub { psql_agent($agent_port, 'full', $full, '-c', 'SELECT 1') == 0 }),
		'back to the first certificate');
}

# ---------------------------------------------------------------------------
# An agent without TLS: 'N', and clients fall back (or fail) as libpq says.
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $plain = start_agent(agent_at("$tmp/plain.ini", $port, undef, "$tmp/agent_plain.log"));

	is(raw_exchange($port, $ssl_request, 1), 'N', 'no TLS configured: SSLRequest answered N');
	my ($rc, $out, $err) = psql_agent($port, 'full', 'sslmode=prefer', '-c', '\conninfo',
		'-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
	is($rc, 0, 'sslmode=prefer falls back to the clear') or diag($err);
	unlike($out, qr/SSL connection/, '\conninfo: not SSL');
	like($out, qr/^t$/m, 'while the agent still talks TLS to the origin');
	($rc, $out, $err) = psql_agent($port, 'full', 'sslmode=require', '-c', 'SELECT 1');
	isnt($rc, 0, 'sslmode=require to an agent without TLS fails');
	like($err, qr/server does not support SSL, but SSL was required/, 'require: client-side message');

	$plain->signal('TERM');
	ok($plain->exited(20), 'the plain agent stops on SIGTERM');
}

# ---------------------------------------------------------------------------
# Clean stop, and nothing alarming in the log.
$agent_proc->signal('TERM');
ok($agent_proc->exited(30), 'the agent stops on SIGTERM');
is($agent_proc->status >> 8, 0, 'exit status 0');
my $log = slurp_from($agent_log);
unlike($log, qr/AddressSanitizer|runtime error|LeakSanitizer/, 'no sanitizer reports')
  or diag($log);

$tls_origin->stop;
$plain_origin->stop;
done_testing();
