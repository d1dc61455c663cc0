# The agent's data path, end to end: clients (psql, pgbench, and PgWire,
# t/PgWire.pm) talk to a real origin through
# `hyperdrive agent`.
#
# Covers: simple and extended protocol (pgbench -M simple/extended/prepared),
# transactions, errors, COPY both ways, notices; LISTEN/NOTIFY and state reset in session pooling; pgbench under
# origin_connection_limit (never more origin connections than the limit);
# transaction pooling (a client holds an origin connection only inside a
# transaction; others queue; query_wait_timeout -> 53300); a client that dies
# inside a transaction; cancel requests; malformed input and failed logins
# with PostgreSQL's SQLSTATEs; the origin going away and coming back; configs
# created, updated and deleted while running; SIGHUP (auth_type, a broken
# settings file); SIGTERM draining.
#
# Needs agent/hyperdrive (make agent). Run from the repository root with
#   prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl t/020_pooler.pl
# with the server's bin directory (psql, pgbench, initdb) on PATH.
use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use File::Basename qw(dirname);
use IO::Socket::INET;
use IPC::Run;
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $hd = $HD;

my $PW = 'app-Secret-7';

# ---------------------------------------------------------------------------
# The origin: role app (SCRAM over TCP) owning database app.
my $node = PostgreSQL::Test::Cluster->new('origin');
$node->init;
$node->append_conf('postgresql.conf', <<'EOF');
listen_addresses = '127.0.0.1'
max_connections = 60
wal_level = replica
max_wal_senders = 4
password_encryption = 'scram-sha-256'
EOF
{
	open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $fh "local all all trust\n";
	print $fh "host all app 127.0.0.1/32 scram-sha-256\n";
	print $fh "host all all 127.0.0.1/32 trust\n";
	close $fh;
}
$node->start;
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW'");
$node->safe_psql('postgres', 'CREATE DATABASE app OWNER app');

# Origin connections the agent holds now: the test's own direct connections
# use the Unix socket, the agent's come over TCP.
sub origin_conns
{
	my ($extra) = @_;
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
		  AND usename = 'app' AND client_addr IS NOT NULL} . ($extra // ''));
}

# ---------------------------------------------------------------------------
# The agent.
# the settings besides listen_addr, listen_port and state_dir
my %settings = (
	log_level => 'info',
	query_wait_timeout => '30',
	server_connect_timeout => '2',
	server_login_retry => '200ms');
my $agent = hd_agent(name => '020_pooler', start => 0);
my ($ini, $log, $aport) = @$agent{qw(ini log port)};

sub write_settings
{
	my ($extra) = @_;
	$agent->{settings} = join('', map { "$_ = $settings{$_}\n" } sort keys %settings);
	$agent->write_settings($extra);
}

# hyperdrive create/update/delete ...; expects success
sub hdcli { my ($name, @args) = @_; return hd_cli($ini, $name, @args); }

sub log_pos { return -s $log // 0; }

# Waits until the agent's log, from $pos on, matches $re.
sub wait_log
{
	my ($re, $pos, $timeout) = @_;
	my $deadline = time + ($timeout // 5);
	while (time < $deadline)
	{
		return 1 if slurp_file($log, $pos) =~ $re;
		sleep 0.1;
	}
	return 0;
}

write_settings();
hdcli('create main', 'create', 'main',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable');

my ($agent_h, $agent_timer);

# Starts the agent in the background; true once it accepts connections.
sub start_agent
{
	$agent_timer = IPC::Run::timeout(3600);
	my $up = $agent->start(timer => $agent_timer, wait => 10, poll => 0.1);
	$agent_h = $agent->{h};
	return $up ? 1 : 0;
}

ok(start_agent(), 'agent listens')
  or BAIL_OUT('the agent did not start: ' . slurp_file($log));

# Reloads the settings (SIGHUP) and waits for the agent to say it did.
sub reload_agent
{
	my ($extra) = @_;
	my $pos = log_pos();
	write_settings($extra);
	$agent_h->signal('HUP');
	return wait_log(qr/settings reloaded|reload failed/, $pos, 5);
}

# ---------------------------------------------------------------------------
# psql through the agent.
sub aconn
{
	my ($db, %o) = @_;
	return "host=127.0.0.1 port=$aport dbname=$db user=" . ($o{user} // 'app')
	  . ' sslmode=disable gssencmode=disable connect_timeout=5';
}

# Runs a psql script; returns stdout (scalar) or (exit code, stdout, stderr,
# seconds). Exit code -1: timed out.
sub apsql
{
	my ($sql, %o) = @_;
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	my @cmd = ('psql', '-XAtq', '-d', aconn($o{db} // 'main', %o),
		'-v', 'VERBOSITY=verbose', '-f', '-');
	push @cmd, '-v', 'ON_ERROR_STOP=1' unless $o{continue};
	my ($out, $err, $rc) = ('', '');
	my $start = time;
	if (!eval {
			IPC::Run::run(\@cmd, '<', \$sql, '>', \$out, '2>', \$err,
				IPC::Run::timeout($o{timeout} // 30));
			$rc = $? >> 8;
			1;
		})
	{
		$rc = -1;
		$err .= "[psql timed out: $@]";
	}
	chomp $out;
	return wantarray ? ($rc, $out, $err, time - $start) : $out;
}

sub agent_ok
{
	my ($after) = @_;
	my ($rc, $out, $err) = apsql("SELECT 'alive'", timeout => 10);
	return 1 if ok($rc == 0 && $out eq 'alive', "agent still serves psql after: $after");
	diag("rc $rc, out '$out', err: $err");
	return 0;
}

# After a section: if the agent stopped answering, say so, and start a new
# one so that the following sections still test something.
sub check_agent
{
	my ($section) = @_;
	return if agent_ok($section);
	diag("the agent stopped answering after: $section; restarting it");
	my $pid = $agent->pid;
	diag(`top -b -n 1 -p $pid 2>&1 | tail -2`) if $pid;
	$agent_h->kill_kill(grace => 2);
	eval { $agent_h->finish };
	start_agent() or BAIL_OUT('could not restart the agent');
}

# Polls until a psql through config $db works.
sub wait_usable
{
	my ($db, $timeout) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my ($rc, $out) = apsql("SELECT 'usable'", db => $db, timeout => 5);
		return 1 if $rc == 0 && $out eq 'usable';
		sleep 0.2;
	}
	return 0;
}

# A psql in the background: send it SQL, wait for its output.
sub bg_psql
{
	my ($db, %o) = @_;
	my $s = { in => '', out => '', err => '' };
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	$s->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', aconn($db), '-v', 'VERBOSITY=verbose', '-f', '-' ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err});
	return $s;
}

sub bg_send
{
	my ($s, $sql) = @_;
	$s->{in} .= $sql;
	eval { $s->{h}->pump_nb };
}

sub bg_wait
{
	my ($s, $re, $timeout) = @_;
	my $deadline = time + $timeout;
	for (;;)
	{
		eval { $s->{h}->pump_nb };
		return 1 if $s->{out} =~ $re || $s->{err} =~ $re;
		return 0 if time > $deadline;
		sleep 0.05;
	}
}

sub bg_quit
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	my $deadline = time + 5;
	while (time < $deadline && $s->{h}->pumpable)
	{
		eval { $s->{h}->pump_nb };
		sleep 0.05;
	}
	$s->{h}->kill_kill if $s->{h}->pumpable;
	eval { $s->{h}->finish };
}

# ---------------------------------------------------------------------------
# The wire-protocol client (t/PgWire.pm) logs in to the agent as app.
$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW);

# An error's fields must say FATAL and $sqlstate.
sub is_fatal
{
	my ($f, $sqlstate, $name) = @_;
	$f //= {};
	ok(($f->{V} // $f->{S} // '') eq 'FATAL' && ($f->{C} // '') eq $sqlstate,
		"$name: FATAL $sqlstate")
	  or diag('got: ' . join(', ', map { "$_=$f->{$_}" } sort keys %$f));
}

sub closes
{
	my ($c, $name) = @_;
	my ($type) = w_msg($c, 5);
	is($type, 'EOF', "$name: then the agent closes the connection");
}

# ---------------------------------------------------------------------------
# psql: queries, transactions, errors, COPY, notices.
{
	is(apsql('SELECT current_user, current_database(), 40 + 2'), 'app|app|42',
		'psql: simple query through the agent (origin role and database)');

	my ($rc, $out, $err) = apsql(<<'SQL');
BEGIN;
CREATE TABLE basics (id int PRIMARY KEY, v text);
INSERT INTO basics VALUES (1, 'one');
COMMIT;
SELECT count(*) FROM basics;
SQL
	ok($rc == 0 && $out eq '1', 'psql: a committed transaction') or diag($err);

	($rc, $out, $err) = apsql(<<'SQL', continue => 1);
BEGIN;
INSERT INTO basics VALUES (2, 'two');
SELECT 1/0;
SELECT 'not run';
ROLLBACK;
SELECT 'after:' || count(*) FROM basics;
SQL
	like($err, qr/ERROR:  22012: division by zero/, 'psql: error inside a transaction');
	like($err, qr/25P02: current transaction is aborted/,
		'psql: the transaction stays aborted until ROLLBACK');
	is($out, 'after:1', 'psql: ROLLBACK undid the insert; the session goes on');

	($rc, $out, $err) = apsql("CREATE TABLE copyt (a int, b text);\n"
		  . "COPY copyt FROM STDIN;\n1\tx\n2\ty\n\\.\n"
		  . "SELECT count(*), sum(a) FROM copyt;\n");
	ok($rc == 0 && $out eq '2|3', 'psql: COPY FROM STDIN') or diag("out '$out' err $err");

	($rc, $out, $err) = apsql("COPY (SELECT g, md5(g::text) FROM generate_series(1, 3) g) TO STDOUT;\n");
	is($out, join("\n", map { "$_\t" . md5_hex($_) } 1 .. 3), 'psql: COPY TO STDOUT');

	($rc, $out, $err) = apsql("COPY copyt FROM STDIN;\n3\tok\nnot-a-number\tbad\n\\.\n"
		  . "SELECT 'after-copy:' || count(*) FROM copyt;\n", continue => 1);
	like($err, qr/22P02: invalid input syntax for type integer/, 'psql: error inside COPY FROM');
	is($out, 'after-copy:2', 'psql: the failed COPY left nothing; the session goes on');

	($rc, $out, $err) =
	  apsql(q{DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$;});
	like($err, qr/NOTICE:  00000: hello from plpgsql/, 'psql: NOTICE forwarded');
}
check_agent('psql basics');

# ---------------------------------------------------------------------------
# Large messages and streams: messages bigger than one read, several MB of
# COPY both ways (back-pressure).
{
	my $big = 'x' x 200000;
	my ($rc, $out, $err) = apsql("SELECT length('$big');\n", timeout => 15);
	is($out, '200000', 'a 200 kB query (a message longer than one read)') or diag($err);
	check_agent('a 200 kB query');

	($rc, $out, $err) = apsql("BEGIN;\nSELECT length('$big');\nCOMMIT;\n", timeout => 15);
	is($out, '200000', 'a 200 kB query inside a transaction') or diag($err);
	check_agent('a 200 kB query inside a transaction');

	my $rows = join('', map { "$_\trow $_\n" } 1 .. 100000);
	($rc, $out, $err) = apsql("CREATE TABLE copybig (a int, b text);\n"
		  . "COPY copybig FROM STDIN;\n$rows\\.\n"
		  . "SELECT count(*), sum(a) FROM copybig;\n", timeout => 15);
	ok($rc == 0 && $out eq '100000|5000050000', 'psql: COPY FROM STDIN, 100000 rows (2 MB)')
	  or diag("out '$out' err $err");
	check_agent('a large COPY FROM STDIN');

	($rc, $out, $err) = apsql(
		"COPY (SELECT g, md5(g::text) FROM generate_series(1, 100000) g) TO STDOUT;\n",
		timeout => 15);
	my @lines = split /\n/, $out;
	ok($rc == 0 && @lines == 100000
		  && $lines[0] eq "1\tc4ca4238a0b923820dcc509a6f75849b"
		  && $lines[-1] eq "100000\t" . md5_hex('100000'),
		'psql: COPY TO STDOUT, 100000 rows (4 MB) intact')
	  or diag('lines: ' . scalar(@lines) . " err $err");
	check_agent('a large COPY TO STDOUT');
}

# ---------------------------------------------------------------------------
# The extended protocol, on the wire.
{
	my $c = w_login();
	ok($c->{ready}, 'wire: SCRAM login through the agent');
	ok($c->{server_verified}, 'wire: the agent proves it knows the SCRAM secret');
	is_deeply($c->{auth}, [ 10, 11, 12, 0 ], 'wire: SASL exchange, then AuthenticationOk');
	ok(defined $c->{pid} && defined $c->{key}, 'wire: BackendKeyData given');
	ok(defined $c->{params}{server_version} && defined $c->{params}{client_encoding},
		'wire: ParameterStatus forwarded (server_version, client_encoding)');

	w_send($c, extended_batch('SELECT $1::int + 1', '41'));
	my $r = w_result($c);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][0] // '') eq '42' && ($r->{status} // '') eq 'I',
		'wire: Parse/Bind/Describe/Execute/Sync');

	# two batches in one write, then an error in the first of two more
	w_send($c, extended_batch('SELECT $1::text', 'a') . extended_batch('SELECT $1::text', 'b'));
	my @got = map { w_result($c)->{rows}[0][0] // 'none' } 1 .. 2;
	is_deeply(\@got, [ 'a', 'b' ], 'wire: two pipelined extended batches');
	w_send($c, extended_batch('SELECT 1/$1::int', '0') . extended_batch('SELECT $1::text', 'c'));
	$r = w_result($c);
	is($r->{errors}[0]{C}, '22012', 'wire: error in an extended batch');
	$r = w_result($c);
	is($r->{rows}[0][0], 'c', 'wire: the next batch after an error runs');
	close $c->{sock};
}

check_agent('the extended protocol');

# ---------------------------------------------------------------------------
# pgbench with 16 clients over 4 origin connections.
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '1', '-h', $node->host, '-p', $oport,
		'-U', 'app', 'app' ], '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($?, 0, 'pgbench -i on the origin') or diag($err);

	hdcli('update main --origin-connection-limit 4', 'update', 'main',
		'--origin-connection-limit', '4');
	sleep 1.5;					# the agent looks at the configs once a second

	for my $mode ('simple', 'extended', 'prepared')
	{
		local $ENV{PGPASSWORD} = $PW;
		local $ENV{PGSSLMODE} = 'disable';
		my ($bout, $berr) = ('', '');
		my $h = IPC::Run::start([ 'pgbench', '-n', '-M', $mode, '-c', '16', '-j', '4',
			'-T', '4', '-h', '127.0.0.1', '-p', $aport, '-U', 'app', 'main' ],
			'>', \$bout, '2>', \$berr, IPC::Run::timeout(60));
		my ($max, $samples) = (0, 0);
		my $deadline = time + 30;
		while (time < $deadline && $h->pumpable)
		{
			my $n = origin_conns();
			$max = $n if $n > $max;
			$samples++;
			eval { $h->pump_nb };
			sleep 0.05;
		}
		if (!eval { $h->finish; 1 })
		{
			$h->kill_kill(grace => 1);
			$berr .= "[pgbench timed out]";
		}
		is($h->result(0), 0, "pgbench -M $mode: exit 0") or diag("$bout\n$berr");
		my ($done) = $bout =~ /number of transactions actually processed: (\d+)/;
		ok(($done // 0) > 0, "pgbench -M $mode: processed transactions ($done)");
		like($bout, qr/number of failed transactions: 0 \(/, "pgbench -M $mode: none failed");
		unlike($berr, qr/error|abort/i, "pgbench -M $mode: no client errors")
		  or diag($berr);
		ok($max <= 4, "pgbench -M $mode: at most 4 origin connections ($max in $samples samples)");
		ok($max >= 2, "pgbench -M $mode: the pool did use several connections ($max)");
	}
}

check_agent('pgbench');

# ---------------------------------------------------------------------------
# Lowering the limit applies to connections already open: with limit 1, one
# transaction at a time even though 4 origin connections are idle.
{
	hdcli('update main --origin-connection-limit 1', 'update', 'main',
		'--origin-connection-limit', '1');
	sleep 1.5;
	my $a = w_login();
	my $b = w_login();
	ok($a->{ready} && $b->{ready}, 'lowered limit: two clients logged in');
	my $r = w_query($a, 'BEGIN; SELECT 1');
	is($r->{status}, 'T', 'lowered limit: A is inside a transaction');
	w_send($b, fmsg('Q', "SELECT 'b-ran'\0"));
	$r = w_result($b, 1.5);
	ok($r->{timeout}, 'lowered limit (1): B waits while A is in a transaction')
	  or diag('B got: ' . ($r->{rows}[0][0] // 'nothing') . '; origin connections: '
		  . origin_conns());
	w_query($a, 'COMMIT');
	$r = w_result($b, 5) if $r->{timeout};
	is($r->{rows}[0][0], 'b-ran', 'lowered limit: B runs once A commits');
	close $_->{sock} for $a, $b;
	hdcli('update main --origin-connection-limit 4', 'update', 'main',
		'--origin-connection-limit', '4');
}

check_agent('lowering the limit');

# ---------------------------------------------------------------------------
# Session pooling: LISTEN/NOTIFY, session state, reset between clients.
{
	hdcli('create sess (session mode, limit 1)', 'create', 'sess',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--pool-mode', 'session', '--origin-connection-limit', '1');
	ok(wait_usable('sess', 5), 'session config usable within seconds of create');

	my $s = bg_psql('sess');
	bg_send($s, "SET work_mem = '7MB';\nLISTEN hd_chan;\nSELECT 'pid:' || pg_backend_pid();\n");
	ok(bg_wait($s, qr/pid:\d+\n/, 10), 'session: LISTEN') or diag($s->{err});
	my ($rc, $out, $err) = apsql(q{NOTIFY hd_chan, 'hello there'});
	is($rc, 0, 'NOTIFY from another client (transaction mode)') or diag($err);
	bg_send($s, "SELECT 'wm:' || current_setting('work_mem');\n");
	ok(bg_wait($s, qr/wm:\S+\n/, 10), 'session: next query');
	like($s->{out}, qr/Asynchronous notification "hd_chan" with payload "hello there" received/,
		'session: the notification reached the listening client');
	like($s->{out}, qr/wm:7MB/, 'session: SET persists across transactions');
	bg_quit($s);

	($rc, $out, $err) = apsql(q{SELECT current_setting('work_mem')
		|| '|' || (SELECT count(*) FROM pg_listening_channels())}, db => 'sess');
	is($out, '4MB|0', 'session: the next client does not inherit that session\'s state')
	  or diag($err);

	# the same without LISTEN: the connection is reused, after DISCARD ALL
	$s = bg_psql('sess');
	bg_send($s, "SET work_mem = '9MB';\nCREATE TEMP TABLE sess_tmp (x int);\n"
		  . "SELECT 'pid:' || pg_backend_pid();\n");
	ok(bg_wait($s, qr/pid:\d+\n/, 10), 'session: SET and a temp table') or diag($s->{err});
	my ($pid) = $s->{out} =~ /pid:(\d+)/;
	bg_quit($s);
	($rc, $out, $err) = apsql(q{SELECT current_setting('work_mem')
		|| '|' || (to_regclass('pg_temp.sess_tmp') IS NULL) || '|' || pg_backend_pid()},
		db => 'sess');
	my ($state, $pid2) = $out =~ /^(.*)\|(\d+)$/;
	is($state, '4MB|true', 'session: reset for the next client (no SET, no temp table)')
	  or diag($err);
	note($pid2 && $pid && $pid2 eq $pid
		? 'session: the origin connection was reused'
		: 'session: a new origin connection was used');
}

check_agent('session pooling');

# ---------------------------------------------------------------------------
# Transaction pooling with one origin connection: clients share it between
# transactions, queue inside one; query_wait_timeout.
hdcli('create tx1 (limit 1)', 'create', 'tx1',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--origin-connection-limit', '1');
ok(wait_usable('tx1', 5), 'tx1 usable within seconds of create');
{
	my $a = bg_psql('tx1');
	my $b = bg_psql('tx1');
	bg_send($a, "SELECT 'a-pid:' || pg_backend_pid();\n");
	bg_send($b, "SELECT 'b-pid:' || pg_backend_pid();\n");
	ok(bg_wait($a, qr/a-pid:\d+\n/, 10) && bg_wait($b, qr/b-pid:\d+\n/, 10),
		'transaction pooling: two clients connected');
	my ($pa) = $a->{out} =~ /a-pid:(\d+)/;
	my ($pb) = $b->{out} =~ /b-pid:(\d+)/;
	is($pa, $pb, 'transaction pooling: both ran on the one origin connection');

	bg_send($a, "BEGIN;\nSELECT 'a-in-txn';\n");
	ok(bg_wait($a, qr/a-in-txn/, 10), 'transaction pooling: A began a transaction');
	bg_send($b, "SELECT 'b-done';\n");
	ok(!bg_wait($b, qr/b-done/, 1.5), "transaction pooling: B's query waits while A is in a transaction");
	bg_send($a, "COMMIT;\nSELECT 'a-committed';\n");
	ok(bg_wait($b, qr/b-done/, 5), 'transaction pooling: B runs once A commits');
	ok(bg_wait($a, qr/a-committed/, 5), 'transaction pooling: A goes on');
	is($b->{err}, '', 'transaction pooling: B saw no error');

	# query_wait_timeout = 2, by SIGHUP
	$settings{query_wait_timeout} = '2';
	ok(reload_agent(), 'SIGHUP: query_wait_timeout = 2');
	bg_send($a, "BEGIN;\nSELECT 'a-again';\n");
	ok(bg_wait($a, qr/a-again/, 10), 'query_wait_timeout: A holds the connection');
	my $c = w_login(db => 'tx1');
	ok($c->{ready}, 'query_wait_timeout: a third client logs in (no connection needed)');
	my $start = time;
	my $r = w_query($c, 'SELECT 1', 8);
	my $took = time - $start;
	is_fatal($r->{errors}[0], '53300', 'query_wait_timeout: the waiting client');
	ok($took > 1.5 && $took < 4.5, sprintf('query_wait_timeout: after ~2 s (%.1f s)', $took));
	ok($r->{eof}, 'query_wait_timeout: then the connection is closed');
	bg_send($a, "COMMIT;\nSELECT 'a-still-fine';\n");
	ok(bg_wait($a, qr/a-still-fine/, 5), 'query_wait_timeout: the holder is unaffected');
	bg_quit($a);
	bg_quit($b);
}

check_agent('transaction pooling');

# ---------------------------------------------------------------------------
# A transaction that ends while its client is far behind: the agent stops
# reading the origin connection while more than 1 MB waits for the client
# (back-pressure), and the same reply carries the ReadyForQuery that gives
# the connection back to the pool. It must read again there, or the next
# client's query (one origin connection: it gets this one) is never answered.
# Client A never reads until B is done, so A is behind whatever the timing.
{
	my $size = 16 * 1024 * 1024;
	my $sock = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
	# a small receive buffer: the kernel holds little of A's reply for it
	setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 65536) or die "SO_RCVBUF: $!";
	$sock->connect(pack_sockaddr_in($aport, inet_aton('127.0.0.1'))) or die "connect: $!";
	binmode $sock;
	my $a = w_login(conn => { sock => $sock, buf => '' }, db => 'tx1');
	ok($a->{ready}, 'slow client: A logged in (its receive buffer 64 kB)');
	w_send($a, fmsg('Q', "SELECT repeat('x', $size)\0"));

	my $b = w_login(db => 'tx1');
	ok($b->{ready}, 'slow client: B logged in');
	my $r = w_query($b, "SELECT 'b-after-a'", 60);
	is_deeply($r->{rows}, [ ['b-after-a'] ],
		"slow client: B's query runs on the connection A's transaction gave back")
	  or diag(explain($r));

	$r = w_result($a, 60);
	ok(@{ $r->{rows} } == 1 && length($r->{rows}[0][0] // '') == $size
		  && $r->{rows}[0][0] eq 'x' x $size && ($r->{status} // '') eq 'I',
		'slow client: A then reads its 16 MB row intact')
	  or diag('rows: ' . scalar(@{ $r->{rows} }) . ', timeout: ' . ($r->{timeout} // 0));
	$r = w_query($a, "SELECT 'a-again'", 60);
	is_deeply($r->{rows}, [ ['a-again'] ], 'slow client: and A goes on');
	close $a->{sock};
	close $b->{sock};
}

check_agent('a transaction that ends while its client is behind');

# ---------------------------------------------------------------------------
# A client that dies inside a transaction: its transaction must not reach the
# next client (one origin connection, so the next client would get it).
{
	my $a = bg_psql('tx1');
	bg_send($a, "BEGIN;\nCREATE TEMP TABLE hd_leftover (x int);\n"
		  . "INSERT INTO hd_leftover VALUES (1);\nSELECT 'in-txn:' || txid_current();\n");
	ok(bg_wait($a, qr/in-txn:\d+/, 10), 'dead client: inside a transaction');
	is(origin_conns(q{ AND state LIKE 'idle in transaction%'}), '1',
		'dead client: the origin shows the open transaction');
	$a->{h}->kill_kill;
	eval { $a->{h}->finish };

	my ($rc, $out, $err) = apsql(
		q{SELECT (txid_current_if_assigned() IS NULL) || '|' || (to_regclass('pg_temp.hd_leftover') IS NULL)},
		db => 'tx1');
	is($out, 'true|true', 'dead client: the next client is not inside its transaction')
	  or diag($err);
	my $left = '?';
	for (1 .. 50)
	{
		$left = origin_conns(q{ AND state LIKE 'idle in transaction%'});
		last if $left eq '0';
		sleep 0.1;
	}
	is($left, '0', "dead client: no 'idle in transaction' left on the origin");
}

check_agent('a client dying in a transaction');

# ---------------------------------------------------------------------------
# Idle origin connections go out last-in first-out: the next transaction runs
# on the connection released last (a first-in first-out pool would hand out
# the one idle the longest, and keep every connection in use).
hdcli('create lifo (limit 3)', 'create', 'lifo',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--origin-connection-limit', '3', '--caching-disabled');
ok(wait_usable('lifo', 5), 'lifo usable within seconds of create');
{
	my $a = bg_psql('lifo');
	my $b = bg_psql('lifo');
	bg_send($a, "BEGIN;\nSELECT 'a-pid:' || pg_backend_pid();\n");
	ok(bg_wait($a, qr/a-pid:\d+\n/, 10), 'LIFO: A holds a connection');
	bg_send($b, "BEGIN;\nSELECT 'b-pid:' || pg_backend_pid();\n");
	ok(bg_wait($b, qr/b-pid:\d+\n/, 10), 'LIFO: B holds another');
	my ($pa) = $a->{out} =~ /a-pid:(\d+)/;
	my ($pb) = $b->{out} =~ /b-pid:(\d+)/;
	isnt($pa, $pb, 'LIFO: two origin connections in use');
	bg_send($a, "COMMIT;\nSELECT 'a-last:' || pg_backend_pid();\n");
	ok(bg_wait($a, qr/a-last:\d+\n/, 10), 'LIFO: A committed');
	bg_send($b, "COMMIT;\nSELECT 'b-last:' || pg_backend_pid();\n");
	ok(bg_wait($b, qr/b-last:\d+\n/, 10), 'LIFO: B committed');
	my ($last) = $b->{out} =~ /b-last:(\d+)/;
	for my $i (1 .. 3)
	{
		my ($rc, $out, $err) = apsql('SELECT pg_backend_pid()', db => 'lifo');
		is($out, $last, "LIFO: a new client's transaction $i runs on the connection released last")
		  or diag($err);
	}
	bg_quit($a);
	bg_quit($b);
}

check_agent('LIFO idle connections');

# ---------------------------------------------------------------------------
# Cancel requests reach the right origin backend, and only it.
{
	my $c1 = w_login();
	my $c2 = w_login();
	ok($c1->{ready} && $c2->{ready}, 'cancel: two clients');
	isnt($c1->{pid} // 0, $c2->{pid} // 0, 'cancel: distinct BackendKeyData');
	w_send($c1, fmsg('Q', "SELECT pg_sleep(30)\0"));
	my $running = 0;
	for (1 .. 50)
	{
		$running = $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'});
		last if $running;
		sleep 0.1;
	}
	is($running, '1', 'cancel: the sleep runs on the origin');
	w_send($c2, fmsg('Q', "SELECT pg_sleep(3), 'c2-done'\0"));
	sleep 0.3;

	# a wrong key: nothing happens
	my $k = w_connect();
	w_send($k, cancel_packet($c1->{pid}, ($c1->{key} + 1) % 4294967296));
	closes($k, 'cancel with a wrong key');
	my $r = w_result($c1, 1);
	ok($r->{timeout} && !@{ $r->{errors} }, 'cancel with a wrong key: the query goes on');

	my $start = time;
	$k = w_connect();
	w_send($k, cancel_packet($c1->{pid}, $c1->{key}));
	closes($k, 'cancel request');
	$r = w_result($c1, 5);
	is($r->{errors}[0]{C}, '57014', 'cancel: the query ends with 57014');
	ok(time - $start < 3, 'cancel: within a few seconds');
	is($r->{status}, 'I', 'cancel: the client is ready again');
	$r = w_query($c1, "SELECT 'c1-after'");
	is($r->{rows}[0][0], 'c1-after', 'cancel: the cancelled client goes on');

	$r = w_result($c2, 8);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][1] // '') eq 'c2-done',
		"cancel: the other client's query was not cancelled")
	  or diag(explain $r);
	close $_->{sock} for $c1, $c2;
}

check_agent('cancel requests');

# ---------------------------------------------------------------------------
# Malformed input and failed logins: PostgreSQL's errors, and the agent
# carries on.
{
	my $c = w_connect();
	w_send($c, pack('N', 3));
	my ($type, $body) = w_msg($c, 5);
	is($type, 'EOF', 'startup length 3: closed without a reply, as PostgreSQL does');
	agent_ok('startup length 3');

	$c = w_connect();
	w_send($c, pack('N', 20000) . ("\0" x 100));
	($type, $body) = w_msg($c, 5);
	is($type, 'EOF', 'startup length 20000: closed without a reply');
	agent_ok('startup length 20000');

	$c = w_connect();
	w_send($c, pack('N', 100) . pack('N', 0x30000) . 'us');
	shutdown($c->{sock}, 1);
	my $got = '';
	for (1 .. 3)
	{
		($type) = w_msg($c, 5);
		$got = $type;
		last if $type eq 'EOF' || $type eq 'TIMEOUT';
	}
	is($got, 'EOF', 'startup says 100 bytes, sends 10, closes: the agent closes too');
	agent_ok('a short startup packet');

	$c = w_connect();
	w_send($c, startup_packet(_code => 0x00020000, user => 'app', database => 'main'));
	($type, $body) = w_msg($c, 5);
	is_fatal(err_fields($body), '0A000', 'protocol 2.0');
	like(err_fields($body)->{M} // '', qr/unsupported frontend protocol 2\.0/,
		'protocol 2.0: says so');
	closes($c, 'protocol 2.0');
	agent_ok('protocol 2.0');

	$c = w_connect();
	w_send($c, ssl_request());
	is(w_bytes($c, 1, 5), 'N', "SSLRequest answered 'N'");
	w_send($c, "\xff" x 64);
	($type, $body) = w_msg($c, 5);
	is($type, 'EOF', 'garbage after SSLRequest (a startup packet of length 4294967295): closed '
		  . 'without a reply, as PostgreSQL does');
	agent_ok('garbage after SSLRequest');

	$c = w_connect();
	w_send($c, gssenc_request());
	is(w_bytes($c, 1, 5), 'N', "GSSENCRequest answered 'N'");
	$c = w_login(conn => $c);
	ok($c->{ready}, 'GSSENCRequest: then a normal login in the clear');

	w_send($c, fmsg('y', 'junk'));
	($type, $body) = w_msg($c, 5);
	is_fatal(err_fields($body), '08P01', 'unknown message type after login');
	closes($c, 'unknown message type');
	agent_ok('an unknown message type');

	$c = w_login();
	w_send($c, 'Q' . pack('N', 2));
	($type, $body) = w_msg($c, 5);
	is_fatal(err_fields($body), '08P01', 'a message with length 2');
	closes($c, 'a message with length 2');
	agent_ok('a message with length 2');

	$c = w_login(password => 'not-the-password');
	is_fatal($c->{error}, '28P01', 'wrong password (SCRAM)');
	like($c->{error}{M} // '', qr/password authentication failed for user "app"/,
		'wrong password: PostgreSQL\'s message');
	my ($rc, $out, $err) = apsql('SELECT 1', password => 'not-the-password');
	ok($rc != 0 && $err =~ /FATAL:  password authentication failed for user "app"/,
		'wrong password: psql says so') or diag($err);
	agent_ok('a wrong password');

	$c = w_login(db => 'nosuchdb');
	is_fatal($c->{error}, '3D000', 'unknown database');
	($rc, $out, $err) = apsql('SELECT 1', db => 'nosuchdb');
	like($err, qr/FATAL:  database "nosuchdb" does not exist/, 'unknown database: psql says so');
	agent_ok('an unknown database');

	$c = w_login(user => 'postgres');
	is_fatal($c->{error}, '28P01', "a user other than the config's");
	agent_ok("a user other than the config's");

	# replication=database: a clear 0A000 while unsupported, or passed
	# through to the origin (as PgBouncer 1.23 does)
	$c = w_login(params => { replication => 'database' });
	if ($c->{ready})
	{
		my $r = w_query($c, 'IDENTIFY_SYSTEM');
		is($r->{rows}[0][0], $node->safe_psql('postgres',
				'SELECT system_identifier FROM pg_control_system()'),
			'replication=database: passed through (IDENTIFY_SYSTEM answers from the origin)')
		  or diag(explain $r);
		close $c->{sock};
	}
	else
	{
		is_fatal($c->{error}, '0A000', 'replication=database refused');
	}
	agent_ok('replication=database');
}

check_agent('malformed input');

# ---------------------------------------------------------------------------
# SIGHUP: auth_type changes apply to new clients; a broken settings file
# keeps the previous settings.
{
	ok(reload_agent("auth_type = md5\n"), 'SIGHUP: auth_type = md5');
	my $c = w_login();
	ok($c->{ready} && $c->{auth}[0] == 5, 'auth_type md5: AuthenticationMD5Password, login ok')
	  or diag(explain $c->{auth});
	close $c->{sock} if $c->{sock};
	agent_ok('auth_type = md5 (psql)');

	ok(reload_agent("auth_type = password\n"), 'SIGHUP: auth_type = password');
	$c = w_login();
	is_deeply($c->{auth}, [ 3, 0 ], 'auth_type password: AuthenticationCleartextPassword');
	ok($c->{ready}, 'auth_type password: login ok');
	close $c->{sock} if $c->{sock};
	$c = w_login(password => 'nope');
	is_fatal($c->{error}, '28P01', 'auth_type password: wrong password');

	my $pos = log_pos();
	ok(reload_agent("auth_type = scram-sha-256\nlisten_prot = 1\n"), 'SIGHUP: a broken settings file');
	like(slurp_file($log, $pos), qr/reload failed, keeping the previous settings:.*listen_prot/,
		'broken settings file: logged, naming the bad line');
	$c = w_login();
	is_deeply($c->{auth}, [ 3, 0 ], 'broken settings file: the previous settings stay (cleartext)');
	close $c->{sock} if $c->{sock};
	agent_ok('a broken settings file');

	ok(reload_agent(), 'SIGHUP: back to SCRAM');
	$c = w_login();
	ok($c->{ready} && $c->{auth}[0] == 10, 'SCRAM again');
	close $c->{sock} if $c->{sock};
}

check_agent('SIGHUP');

# ---------------------------------------------------------------------------
# Configs changed while running.
{
	hdcli('create second', 'create', 'second',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app", '--sslmode', 'disable');
	ok(wait_usable('second', 5), 'second config usable within seconds of create');
	my $x = w_login(db => 'second');
	my $y = w_login();
	ok($x->{ready} && $y->{ready}, 'clients of second and main');
	my $r = w_query($y, 'BEGIN; SELECT 1');
	is($r->{status}, 'T', 'main client inside a transaction');

	hdcli('delete second', 'delete', 'second');
	my ($type, $body) = w_msg($x, 5);
	is($type, 'E', "deleted config: its client gets an error");
	my $f = err_fields($body);
	ok(($f->{V} // '') eq 'FATAL' && ($f->{C} // '') =~ /^(57P01|08006|3D000)$/,
		"deleted config: FATAL ($f->{C}: $f->{M})");
	closes($x, 'deleted config');
	$r = w_query($y, "SELECT 'y-alive'; COMMIT");
	ok(!@{ $r->{errors} } && ($r->{rows}[0][0] // '') eq 'y-alive' && ($r->{status} // '') eq 'I',
		"deleted config: main's client, in a transaction meanwhile, is unaffected");
	my $c = w_login(db => 'second');
	is_fatal($c->{error}, '3D000', 'deleted config: new clients get 3D000');

	# a wrong origin password: the origin refuses new connections
	my $z = w_login();
	ok($z->{ready}, 'a main client connected before the next changes');
	my $pos = log_pos();
	hdcli('update main --origin-password WRONG', 'update', 'main',
		'--origin-password', 'WRONG-pw');
	ok(wait_log(qr/config main changed/, $pos, 5), 'the agent picked up the change');
	$c = w_login(password => 'WRONG-pw');
	ok($c->{auth_ok}, 'wrong origin password: the agent accepts the client (the config\'s password)');
	is_fatal($c->{error}, '28P01', 'wrong origin password: the origin\'s refusal reaches the client');
	like($c->{error}{M} // '', qr/password authentication failed/,
		'wrong origin password: with the origin\'s message');

	$pos = log_pos();
	hdcli('update main --origin-password back', 'update', 'main', '--origin-password', $PW);
	ok(wait_log(qr/config main changed/, $pos, 5), 'the agent picked up the password again');
	ok(wait_usable('main', 5), 'main works again with the right password');

	# a client connected before the changes keeps working (new connections
	# use the new settings), as PgBouncer does after a reload
	$r = w_query($z, "SELECT 'z-alive'", 5);
	ok(!@{ $r->{errors} } && ($r->{rows}[0][0] // '') eq 'z-alive',
		'a client connected before a config change still works after it')
	  or diag(explain $r->{errors});
	close $z->{sock};
}

check_agent('config changes');

# ---------------------------------------------------------------------------
# The origin goes away, and comes back.
{
	$node->stop('fast');
	my $start = time;
	my $c = w_login(timeout => 8);
	my $f = $c->{error};
	if ($c->{ready})
	{
		my $r = w_query($c, 'SELECT 1', 8);
		$f = $r->{errors}[0];
	}
	my $took = time - $start;
	ok($f && ($f->{C} // '') =~ /^(08001|08006)$/,
		'origin down: the client gets 08001/08006 (' . ($f->{C} // 'none') . ': '
		  . ($f->{M} // '') . ')');
	ok($took < 5, sprintf('origin down: quickly (%.1f s)', $took));

	my ($rc, $out, $err, $secs) = apsql('SELECT 1', timeout => 10);
	ok($rc > 0 && $secs < 5 && $err =~ /origin/,
		sprintf('origin down: psql fails fast (%.1f s)', $secs)) or diag($err);

	$node->start;
	$start = time;
	ok(wait_usable('main', 10), 'origin back: clients work again');
	ok(time - $start < 5, sprintf('origin back: within a few seconds (%.1f s)', time - $start));
}

check_agent('the origin going away');

# ---------------------------------------------------------------------------
# SIGTERM: no new clients; a transaction in progress may finish; then exit.
{
	apsql('CREATE TABLE drain_t (x int)');
	my $d = w_login();
	my $e = w_login();
	ok($d->{ready} && $e->{ready}, 'drain: two clients');
	my $r = w_query($d, 'BEGIN; INSERT INTO drain_t VALUES (1)');
	is($r->{status}, 'T', 'drain: one inside a transaction');

	$agent_h->signal('TERM');
	my ($type, $body) = w_msg($e, 5);
	is_fatal(err_fields($body), '57P01', 'drain: an idle client is told the agent is stopping');
	my $refused = 0;
	for (1 .. 20)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $aport,
			Proto => 'tcp', Timeout => 1);
		if (!$s) { $refused = 1; last; }
		close $s;
		sleep 0.1;
	}
	ok($refused, 'drain: new connections are refused');

	$r = w_query($d, 'COMMIT');
	ok(!@{ $r->{errors} } && ($r->{tags}[0] // '') eq 'COMMIT' && ($r->{status} // '') eq 'I',
		'drain: the transaction in progress can COMMIT');
	($type, $body) = w_msg($d, 5);
	ok($type eq 'EOF' || ($type eq 'E' && err_fields($body)->{C} eq '57P01'),
		'drain: then that client is let go');

	$agent_timer->start(10);
	my $exited = eval { $agent_h->finish; 1 };
	ok($exited, 'drain: the agent exits');
	is($agent_h->result(0), 0, 'drain: exit status 0') if $exited;
	is($node->safe_psql('app', 'SELECT count(*) FROM drain_t'), '1',
		'drain: the committed row is on the origin');
}

my $agent_log = slurp_file($log);
unlike($agent_log, qr/AddressSanitizer|Segmentation|double free/, 'agent log: no crash');
if (!Test::More->builder->is_passing)
{
	my @lines = split /\n/, $agent_log;
	splice(@lines, 0, @lines - 80) if @lines > 80;
	note("agent log (last lines; all of it in $log):\n" . join("\n", @lines));
}

eval { $agent_h->kill_kill } if $agent_h->pumpable;
$node->stop;
done_testing();
