# The result cache, phase 1, end to end (docs/cache.md): a real origin
# (wal_level = logical, the extension), the agent with a config that caches,
# its change stream, and clients through the agent.
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $hd = File::Spec->rel2abs(dirname(__FILE__) . '/../agent/hyperdrive');
BAIL_OUT("$hd is missing: run 'make agent' first") unless -x $hd;

my $PW = 'app-Secret-70';

# ---------------------------------------------------------------------------
# The origin.
my $node = PostgreSQL::Test::Cluster->new('origin');
$node->init(allows_streaming => 'logical');
$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
$node->append_conf('postgresql.conf', "password_encryption = 'scram-sha-256'\n");
$node->append_conf('postgresql.conf', "autovacuum = off\nsynchronous_commit = local\n");
if (`postgres --describe-config 2>/dev/null` =~ /^output_plugin_libraries\b/m)
{
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'\n");
}
{
	open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $fh "local all all trust\n";
	print $fh "local replication all trust\n";
	print $fh "host all all 127.0.0.1/32 scram-sha-256\n";
	print $fh "host replication all 127.0.0.1/32 scram-sha-256\n";
	close $fh;
}
$node->start;
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW';
CREATE ROLE alice LOGIN REPLICATION PASSWORD 'alice-pw';
CREATE ROLE bob LOGIN REPLICATION PASSWORD 'bob-pw';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', <<'SQL');
CREATE EXTENSION hyperdrive;
GRANT USAGE ON SCHEMA hyperdrive TO PUBLIC;
GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO app;
SET ROLE app;
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');
CREATE TABLE other (id int PRIMARY KEY, v text);
INSERT INTO other VALUES (1, 'x');
CREATE TABLE log (id serial PRIMARY KEY, what text);
CREATE FUNCTION touch_items() RETURNS void LANGUAGE sql AS $$ UPDATE items SET name = name || '+' WHERE id = 3 $$;
CREATE TABLE audited (id int PRIMARY KEY, v text);
INSERT INTO audited VALUES (1, 'a');
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log(what) VALUES (NEW.v); RETURN NEW; END $$;
CREATE TRIGGER audited_t AFTER UPDATE ON audited FOR EACH ROW EXECUTE FUNCTION audit();
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE);
INSERT INTO parent VALUES (1), (2);
INSERT INTO child VALUES (10, 1), (20, 2);
CREATE TABLE meas (d int, v text) PARTITION BY RANGE (d);
CREATE TABLE meas1 PARTITION OF meas FOR VALUES FROM (0) TO (10);
INSERT INTO meas VALUES (1, 'one');
CREATE TABLE meas2 (d int, v text);
INSERT INTO meas2 VALUES (15, 'fifteen');
CREATE VIEW items_v AS SELECT id, name FROM items WHERE id < 3;
CREATE MATERIALIZED VIEW items_mv AS SELECT count(*) AS n FROM items;
CREATE UNLOGGED TABLE unl (id int);
CREATE TABLE secure (id int, owner text);
ALTER TABLE secure ENABLE ROW LEVEL SECURITY;
CREATE TABLE privs (id int, secret text);
INSERT INTO privs VALUES (1, 's');
GRANT SELECT ON privs TO alice;
CREATE SCHEMA sa;
CREATE SCHEMA sb;
CREATE TABLE sa.t (v text);
CREATE TABLE sb.t (v text);
INSERT INTO sa.t VALUES ('schema a');
INSERT INTO sb.t VALUES ('schema b');
GRANT USAGE ON SCHEMA sa, sb TO alice, bob;
GRANT SELECT ON sa.t, sb.t TO alice, bob;
RESET ROLE;
ALTER ROLE alice SET search_path = sa;
ALTER ROLE bob SET search_path = sb;
SQL

# ---------------------------------------------------------------------------
# The agent: cleartext passwords from clients (so that a raw socket client
# can log in), an admin console.
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_cache'));
my $ini = "$tmp/hyperdrive.ini";
my $log = "$PostgreSQL::Test::Utils::log_path/070_cache_agent.log";
my $aport = PostgreSQL::Test::Cluster::get_free_port();
{
	open my $fh, '>', "$tmp/users.txt" or die $!;
	print $fh qq{"ops" "ops-pw"\n};
	close $fh;
	open $fh, '>', $ini or die $!;
	print $fh "[agent]\nlisten_addr = 127.0.0.1\nlisten_port = $aport\n";
	print $fh "state_dir = $tmp/state\nlog_level = info\nquery_wait_timeout = 20\n";
	print $fh "auth_type = password\nadmin_users = ops\nauth_file = users.txt\n";
	print $fh "max_lag = 1s\ncache_max_entry_bytes = 64kB\n";
	close $fh;
}

sub hdcli
{
	my ($name, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $hd, @args, '-c', $ini ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(30));
	is($?, 0, "cli: $name") or diag($err);
	return $out;
}

hdcli('create app (caching on)', 'create', 'app',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--max-age', '300');
# auth_type = password gives the agent no SCRAM keys for other roles: the
# roles test uses a config per role (each with its own user)
for my $r ([ 'alice', 'alice-pw' ], [ 'bob', 'bob-pw' ])
{
	hdcli("create app_$r->[0]", 'create', "app_$r->[0]",
		"--connection-string=postgresql://$r->[0]:$r->[1]\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--max-age', '300');
}
hdcli('create nocache (caching off)', 'create', 'nocache',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--caching-disabled');

my $agent;

sub start_agent
{
	$agent = IPC::Run::start([ $hd, 'agent', '-c', $ini ], '<', \undef, '>>', $log, '2>&1');
	for (1 .. 100)
	{
		return 1
		  if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $aport, Timeout => 1);
		sleep 0.1;
	}
	return 0;
}
ok(start_agent(), 'the agent listens');

# psql through the agent; returns (exit status, stdout, stderr)
sub q_agent
{
	my (%o) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	my @cmd = ('psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1',
		'-p', $aport, '-U', $o{user} // 'app', '-d', $o{dbname} // 'app');
	push @cmd, map { ('-c', $_) } @{ $o{sql} };
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return wantarray ? ($? >> 8, $out, $err) : $out;
}

sub sel { my ($sql, %o) = @_; my $r = q_agent(%o, sql => [$sql]); chomp $r; return $r; }

# the role's own config
sub as { my ($role) = @_; return (user => $role, password => "$role-pw", dbname => "app_$role", cfg => "app_$role"); }

# SHOW CACHE row of config app as a hash
sub cache_status
{
	my ($name) = @_;
	$name //= 'app';
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = 'ops-pw';
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-F', '|', '-h', '127.0.0.1', '-p', $aport,
			'-U', 'ops', '-d', 'hyperdrive', '-c', 'SHOW CACHE' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line, -1;
		next unless $f[0] eq $name;
		my %h = (entries => $f[1], bytes => $f[2], hits => $f[3], misses => $f[4],
			stored => $f[5], invalidated => $f[6], bypasses => $f[7],
			connected => $f[8], applied_lsn => $f[9], lag => $f[10], slots_lost => $f[11]);
		my %b;
		for my $kv (split /, /, $f[7] // '')
		{
			$b{$1} = $2 if $kv =~ /^(.*)=(\d+)$/;
		}
		$h{by} = \%b;
		return \%h;
	}
	return { by => {} };
}

sub wait_for
{
	my ($cond, $secs) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		return 1 if $cond->();
		sleep 0.05;
	}
	return 0;
}

ok(wait_for(sub { (cache_status()->{connected} // '') eq 'yes' }, 15),
	'the config\'s change stream connects');
ok($node->safe_psql('app',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hyperdrive_app'") == 1,
	'slot hyperdrive_app exists');
is(cache_status('nocache')->{connected}, undef, 'no stream for a config with caching off');

# a hit for $sql (after at most one miss), with the stream healthy
sub warm
{
	my ($sql, %o) = @_;
	my $r;
	wait_for(sub {
		my $h0 = cache_status($o{cfg})->{hits};
		$r = sel($sql, %o);
		return cache_status($o{cfg})->{hits} > $h0;
	}, 10) or return undef;
	return $r;
}

# ---------------------------------------------------------------------------
# Hits are identical to misses.
my $q1 = 'SELECT id, name FROM items ORDER BY id';
my $s0 = cache_status();
my $miss = sel($q1);
my $s1 = cache_status();
is($s1->{misses}, $s0->{misses} + 1, 'first read: a miss');
is($s1->{stored}, $s0->{stored} + 1, 'and stored');
my $hit = sel($q1);
my $s2 = cache_status();
is($s2->{hits}, $s1->{hits} + 1, 'second read: a hit');
is($hit, $miss, 'the hit returns what the miss returned (psql)');
is($hit, "1|apple\n2|pear\n3|plum", 'which is the origin\'s answer');

# the exact bytes, over a raw socket
sub raw_connect
{
	my ($user, $pw, $db) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $aport, Timeout => 10)
	  or die "connect: $!";
	my $params = "user\0$user\0database\0$db\0\0";
	print $s pack('NN', 8 + length($params), 196608) . $params;
	while (1)
	{
		my ($type, $body) = raw_read($s);
		die "login failed" if !defined $type || $type eq 'E';
		if ($type eq 'R' && unpack('N', $body) == 3)
		{
			print $s 'p' . pack('N', 4 + length($pw) + 1) . "$pw\0";
		}
		last if $type eq 'Z';
	}
	return $s;
}

sub raw_read
{
	my ($s) = @_;
	my $hdr = '';
	while (length($hdr) < 5)
	{
		my $n = sysread($s, $hdr, 5 - length($hdr), length($hdr));
		return undef unless $n;
	}
	my ($type, $len) = unpack('aN', $hdr);
	my $body = '';
	while (length($body) < $len - 4)
	{
		my $n = sysread($s, $body, $len - 4 - length($body), length($body));
		return undef unless $n;
	}
	return ($type, $body, $hdr . $body);
}

sub raw_query
{
	my ($s, $sql) = @_;
	print $s 'Q' . pack('N', 4 + length($sql) + 1) . "$sql\0";
	my $all = '';
	while (1)
	{
		my ($type, $body, $msg) = raw_read($s);
		last unless defined $type;
		$all .= $msg;
		last if $type eq 'Z';
	}
	return $all;
}

{
	my $rs = raw_connect('app', $PW, 'app');
	my $rq = 'SELECT name, id * 2 AS twice FROM items WHERE id <= 2 ORDER BY id';
	my $h0 = cache_status()->{hits};
	# ParameterStatus from the agent's settings sync precedes the first reply: not part of it
	my $b1 = raw_query($rs, $rq);
	while (substr($b1, 0, 1) eq 'S') { $b1 = substr($b1, 1 + unpack('N', substr($b1, 1, 4))); }
	my $b2 = raw_query($rs, $rq);
	my $b3 = raw_query($rs, $rq);
	is(cache_status()->{hits}, $h0 + 2, 'raw client: a miss, then two hits');
	ok(length($b1) > 20, 'raw client: got a result');
	is(unpack('H*', $b2), unpack('H*', $b1), 'raw client: the hit is byte-identical to the miss');
	is(unpack('H*', $b3), unpack('H*', $b1), 'and so is the next one');
	my $rsn = raw_connect('app', $PW, 'nocache');
	my $b4 = raw_query($rsn, $rq);
	while (substr($b4, 0, 1) eq 'S') { $b4 = substr($b4, 1 + unpack('N', substr($b4, 1, 4))); }
	is(unpack('H*', $b4), unpack('H*', $b1), 'and identical to the origin\'s answer (nocache config)');
	close $rs;
	close $rsn;
}

# ---------------------------------------------------------------------------
# Writes made directly on the origin invalidate.
sub invalidates
{
	my ($name, $read, $write, $expect) = @_;
	ok(defined warm($read), "$name: the read is cached") or return;
	my $inv0 = cache_status()->{invalidated};
	$node->safe_psql('app', $write);
	my $got;
	my $ok = wait_for(sub { $got = sel($read); $got eq $expect }, 2.5);
	ok($ok, "$name: the next read shows the change within the bound")
	  or diag("got <$got>, expected <$expect>");
	ok(cache_status()->{invalidated} > $inv0, "$name: SHOW CACHE counts the invalidation");
	# once applied, never the old value again
	my $stale = 0;
	for (1 .. 5) { $stale++ if sel($read) ne $expect; }
	is($stale, 0, "$name: no stale read after the invalidation");
}

invalidates('UPDATE on the origin', 'SELECT name FROM items WHERE id = 1',
	"UPDATE items SET name = 'apricot' WHERE id = 1", 'apricot');
invalidates('a write inside a function', 'SELECT name FROM items WHERE id = 3',
	'SET ROLE app; SELECT touch_items()', 'plum+');
invalidates('a trigger\'s write', 'SELECT count(*) FROM log',
	"UPDATE audited SET v = 'b'", '1');
invalidates('FK cascade', 'SELECT count(*) FROM child',
	'DELETE FROM parent WHERE id = 2', '1');
invalidates('TRUNCATE', 'SELECT count(*) FROM other', 'TRUNCATE other', '0');
invalidates('partition ATTACH', 'SELECT count(*) FROM meas',
	'ALTER TABLE meas ATTACH PARTITION meas2 FOR VALUES FROM (10) TO (20)', '2');
invalidates('partition DETACH', 'SELECT count(*) FROM meas',
	'ALTER TABLE meas DETACH PARTITION meas2', '1');
invalidates('CREATE OR REPLACE VIEW', 'SELECT count(*) FROM items_v',
	'CREATE OR REPLACE VIEW items_v AS SELECT id, name FROM items WHERE id < 4', '3');
invalidates('REFRESH MATERIALIZED VIEW', 'SELECT n FROM items_mv',
	"INSERT INTO items VALUES (4, 'fig'); REFRESH MATERIALIZED VIEW items_mv", '4');
invalidates('ALTER TABLE', 'SELECT * FROM other',
	"ALTER TABLE other ADD COLUMN extra int DEFAULT 7; INSERT INTO other VALUES (5, 'y')", '5|y|7');
{
	my $read = 'SELECT secret FROM public.privs';
	ok(defined warm($read, as('alice')), 'REVOKE: alice\'s read is cached');
	$node->safe_psql('app', 'REVOKE SELECT ON privs FROM alice');
	my ($rc, $out, $err);
	my $ok = wait_for(sub {
		($rc, $out, $err) = q_agent(as('alice'), sql => [$read]);
		$err =~ /permission denied/;
	}, 2.5);
	ok($ok, 'REVOKE: alice gets permission denied within the bound');
	$node->safe_psql('app', 'GRANT SELECT ON privs TO alice');
	ok(wait_for(sub { sel($read, as('alice')) eq 's' }, 2.5),
		'GRANT: alice reads again');
}

# an unrelated write leaves the entry
{
	my $read = 'SELECT name FROM items WHERE id = 2';
	warm($read);
	my $h0 = cache_status()->{hits};
	$node->safe_psql('app', "INSERT INTO log(what) VALUES ('unrelated')");
	sleep 0.5;
	is(sel($read), 'pear', 'unrelated write: same answer');
	is(cache_status()->{hits}, $h0 + 1, 'unrelated write: still a hit');
}

# ---------------------------------------------------------------------------
# What is never cached, and why.
sub bypassed
{
	my ($name, $sqls, $reason, %o) = @_;
	my $b0 = cache_status()->{by}{$reason} // 0;
	my $h0 = cache_status()->{hits};
	my ($rc, $out, $err) = q_agent(%o, sql => $sqls);
	($rc, $out, $err) = q_agent(%o, sql => $sqls);
	is(cache_status()->{hits}, $h0, "$name: never a hit");
	ok((cache_status()->{by}{$reason} // 0) >= $b0 + 1, "$name: bypassed as $reason")
	  or diag(explain(cache_status()->{by}));
}
bypassed('now()', ['SELECT now() > now() - interval \'1 day\''], 'bypass:uncacheable:stable function');
bypassed('random()', ['SELECT random() < 2'], 'bypass:uncacheable:volatile function');
bypassed('FOR UPDATE', ['SELECT * FROM items WHERE id = 2 FOR UPDATE'], 'bypass:uncacheable:locking clause');
bypassed('pg_class', ['SELECT count(*) > 0 FROM pg_class'], 'bypass:uncacheable:system catalog');
bypassed('unlogged table', ['SELECT count(*) FROM unl'], 'bypass:uncacheable:unlogged table');
bypassed('RLS table', ['SELECT count(*) FROM secure'], 'bypass:uncacheable:row level security');
bypassed('temp table', ['CREATE TEMP TABLE tt (a int)', 'SELECT count(*) FROM tt'], 'bypass:pinned');
bypassed('multi-statement', ['SELECT 1 FROM items LIMIT 1; SELECT 2 FROM items LIMIT 1'],
	'bypass:uncacheable:multiple statements');
bypassed('inside BEGIN', ['BEGIN', 'SELECT name FROM items WHERE id = 2', 'COMMIT'], 'bypass:transaction');

# roles and search_path: the same text, different answers
{
	my $ra = warm('SELECT v FROM t', as('alice'));
	my $rb = warm('SELECT v FROM t', as('bob'));
	is($ra, 'schema a', 'alice reads sa.t (cached)');
	is($rb, 'schema b', 'bob reads sb.t (cached), never alice\'s rows');
	is(sel('SELECT v FROM t', as('bob')), 'schema b', 'and again');
	my ($rc, $out) = q_agent(sql => ['SET search_path = sa', 'SELECT v FROM t', 'SET search_path = sb', 'SELECT v FROM t']);
	is($out, "schema a\nschema b\n", 'one client, two search_paths: two entries');
}

# ---------------------------------------------------------------------------
# Read your writes through the agent.
{
	warm('SELECT name FROM items WHERE id = 2');
	my $bad = 0;
	for my $i (1 .. 10)
	{
		my ($rc, $out, $err) = q_agent(sql => [ "UPDATE items SET name = 'pear$i' WHERE id = 2",
				'SELECT name FROM items WHERE id = 2' ]);
		$bad++ unless $out eq "pear$i\n";
	}
	is($bad, 0, 'read-your-writes: a client reads its own update at once (10 rounds)');
	diag('read-your-writes bypasses so far: ' . (cache_status()->{by}{'bypass:read-your-writes'} // 0));
}

# the cost of read-your-writes for write transactions, and hit vs miss latency
sub timed
{
	my ($db, $sql, $n) = @_;
	my $file = "$tmp/timed.sql";
	open my $fh, '>', $file or die $!;
	print $fh "$sql;\n" for 1 .. $n;
	close $fh;
	local $ENV{PGPASSWORD} = $PW;
	my $t0 = time;
	IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
			'-d', $db, '-f', $file ], '<', \undef, '>', \my $o, '2>', \my $e, IPC::Run::timeout(120));
	return (time - $t0) / $n * 1000;
}
{
	my $n = 300;
	my $w_cache = timed('app', "UPDATE log SET what = 'w' WHERE id = 1", $n);
	my $w_plain = timed('nocache', "UPDATE log SET what = 'w' WHERE id = 1", $n);
	diag(sprintf('write (autocommit UPDATE): %.3f ms with caching (read-your-writes query), %.3f ms without: +%.3f ms',
			$w_cache, $w_plain, $w_cache - $w_plain));
	sleep 1.5;
	warm('SELECT id, name FROM items ORDER BY id');
	my $hit_ms = timed('app', 'SELECT id, name FROM items ORDER BY id', $n);
	my $plain_ms = timed('nocache', 'SELECT id, name FROM items ORDER BY id', $n);
	diag(sprintf('read: %.3f ms per hit, %.3f ms through the agent without cache', $hit_ms, $plain_ms));
	ok(1, 'measured');
}

# ---------------------------------------------------------------------------
# The race: a commit that is in the WAL (and streamed) but not yet visible.
{
	my $read = 'SELECT name FROM items WHERE id = 1';
	is(warm($read), 'apricot', 'race: the entry is cached');
	$node->append_conf('postgresql.conf', "synchronous_standby_names = 'nobody'\n");
	$node->reload;
	my $inv0 = cache_status()->{invalidated};
	my ($wout, $werr) = ('', '');
	my $writer = IPC::Run::start([ 'psql', '-X', '-h', $node->host, '-p', $oport, '-d', 'app', '-c',
			"SET synchronous_commit = on; UPDATE items SET name = 'raced' WHERE id = 1" ],
		'<', \undef, '>', \$wout, '2>', \$werr, IPC::Run::timeout(60));
	ok(wait_for(sub { cache_status()->{invalidated} > $inv0 }, 5),
		'race: the writer\'s commit was streamed and applied');
	is($node->safe_psql('app', "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
		'1', 'race: the writer still waits (its commit is not visible)');
	my $r0 = cache_status()->{by}{'bypass:race'} // 0;
	is(sel($read), 'apricot', 'race: a read now sees the old value (as the origin does)');
	ok((cache_status()->{by}{'bypass:race'} // 0) > $r0, 'race: the fill was not stored (race)');
	my $h0 = cache_status()->{hits};
	is(sel($read), 'apricot', 'race: again the old value');
	is(cache_status()->{hits}, $h0, 'race: and no hit');
	$node->adjust_conf('postgresql.conf', 'synchronous_standby_names', "''");
	$node->reload;
	$writer->finish;
	ok(wait_for(sub { sel($read) eq 'raced' }, 3), 'race: once visible, the new value');
	my $stale = 0;
	for (1 .. 10) { $stale++ if sel($read) ne 'raced'; }
	is($stale, 0, 'race: never the old value after that');
}

# ---------------------------------------------------------------------------
# The stream cut: reads bypass, then hits come back.
{
	my $read = 'SELECT name FROM items WHERE id = 1';
	warm($read);
	$node->safe_psql('app',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'hyperdrive stream'");
	my $b0 = (cache_status()->{by}{'bypass:stream-down'} // 0) + (cache_status()->{by}{'bypass:lagging'} // 0);
	my $h0 = cache_status()->{hits};
	ok(wait_for(sub { sel($read); my $s = cache_status();
		($s->{by}{'bypass:stream-down'} // 0) + ($s->{by}{'bypass:lagging'} // 0) > $b0 }, 3),
		'stream cut: reads bypass (stream down / lagging)');
	ok(defined warm($read), 'stream cut: hits resume after the reconnect');
}

# ---------------------------------------------------------------------------
# kill -9 and restart: the entries survive, but no hit before the stream
# caught up, and writes made while the agent was down invalidate first.
{
	my $read = 'SELECT name FROM items WHERE id = 3';
	my $warm = warm($read);
	ok(defined $warm, 'restart: the entry is cached');
	sleep 1.5;	# its position synced and confirmed
	$agent->signal('KILL');
	$agent->finish;
	$node->safe_psql('app', "UPDATE items SET name = 'while-down' WHERE id = 3");
	ok(start_agent(), 'restart: the agent listens again');
	my $stale = 0;
	my $t_end = time + 4;
	while (time < $t_end)
	{
		my $got = sel($read);
		$stale++ if $got ne 'while-down';
	}
	is($stale, 0, 'restart: never the value from before the write made while down');
	ok(cache_status()->{entries} >= 1, 'restart: other entries stayed (warm)');
	my $other = 'SELECT id, name FROM items ORDER BY id';
	my $h0 = cache_status()->{hits};
	ok(wait_for(sub { sel('SELECT id, name FROM items ORDER BY id'); cache_status()->{hits} > $h0 }, 5),
		'restart: hits are served again once caught up');
}

$agent->signal('TERM');
$agent->finish;
done_testing();
