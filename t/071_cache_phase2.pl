# The result cache, phase 2 (docs/cache.md): request coalescing and
# stale-while-revalidate, end to end (a real origin, the agent, psql clients).
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
my $node = PostgreSQL::Test::Cluster->new('origin71');
$node->init(allows_streaming => 'logical');
$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
$node->append_conf('postgresql.conf', "password_encryption = 'scram-sha-256'\n");
$node->append_conf('postgresql.conf', "autovacuum = off\nsynchronous_commit = local\nshared_preload_libraries = 'pg_stat_statements'\nmax_connections = 60\n");
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
CREATE EXTENSION pg_stat_statements;
GRANT USAGE ON SCHEMA hyperdrive TO PUBLIC;
GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO app;
SET ROLE app;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
-- slow but cacheable (declared IMMUTABLE; reads nothing, writes nothing)
CREATE FUNCTION hd_slow(n bigint, secs float8 DEFAULT 0.5) RETURNS bigint LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM pg_sleep(secs); RETURN n; END $$;
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
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_cache71'));
my $ini = "$tmp/hyperdrive.ini";
my $log = "$PostgreSQL::Test::Utils::log_path/071_cache_agent.log";
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
hdcli('create swr (max-age 1, swr 5)', 'create', 'swr',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--max-age', '1', '--swr', '5');

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
			connected => $f[8], applied_lsn => $f[9], lag => $f[10], slots_lost => $f[11],
			coalesced => $f[12], stale => $f[13], refreshes => $f[14]);
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


# origin executions of statements matching $like (pg_stat_statements)
sub calls
{
	my ($like) = @_;
	return $node->safe_psql('app',
		"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '$like'");
}

# $n psql clients started together, each running $sql once; their outputs
sub concurrent
{
	my ($n, $sql, %o) = @_;
	my (@h, @out, @err);
	local $ENV{PGPASSWORD} = $o{password} // $PW;
	for my $i (0 .. $n - 1)
	{
		$out[$i] = '';
		$err[$i] = '';
		push @h, IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport,
				'-U', 'app', '-d', $o{dbname} // 'app', '-c', $sql ],
			'<', \undef, '>', \$out[$i], '2>', \$err[$i], IPC::Run::timeout(60));
	}
	$_->finish for @h;
	diag("client stderr: $_") for grep { $_ ne '' } @err;
	chomp @out;
	return @out;
}

ok(wait_for(sub { (cache_status()->{connected} // '') eq 'yes' }, 15),
	'the config\'s change stream connects');
ok(defined warm('SELECT id, name FROM items ORDER BY id'), 'a first entry is cached (warm-up)');

# ---------------------------------------------------------------------------
# Coalescing: 8 concurrent identical cold queries, one origin execution.
{
	my $sql = 'SELECT hd_slow(count(*), 1.5) FROM t';
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	my @r = concurrent(8, $sql);
	my $s1 = cache_status();
	is(scalar(grep { $_ eq '3' } @r), 8, 'coalescing: all 8 clients get the right answer')
	  or diag(explain(\@r));
	is(calls('%hd_slow(count(*), $1) FROM t%'), 1, 'coalescing: the origin ran the query once');
	is($s1->{stored} - $s0->{stored}, 1, 'coalescing: one fill stored');
	is($s1->{coalesced} - $s0->{coalesced}, 7, 'coalescing: SHOW CACHE counts 7 coalesced');
	my $h0 = $s1->{hits};
	is(sel($sql), '3', 'coalescing: then a hit');
	is(cache_status()->{hits}, $h0 + 1, 'coalescing: counted as a hit');
	my $m = '';
	my $mport = 0;
	ok(1, 'coalescing: done');
}

# a fill that is not stored (oversized): every waiter runs its own query
{
	my $sql = "SELECT hd_slow(count(*)), repeat('x', 70000 + count(*)::int) FROM t";
	$node->safe_psql('app', 'SELECT pg_stat_statements_reset()');
	my $s0 = cache_status();
	my @r = concurrent(8, $sql);
	my $s1 = cache_status();
	is(scalar(grep { $_ eq '3|' . ('x' x 70003) } @r), 8, 'oversized: all 8 clients get the right answer')
	  or diag(explain([ map { length } @r ]));
	is(calls('%hd_slow(count(*)), repeat%'), 8, 'oversized: each ran its own query on the origin');
	is($s1->{coalesced} - $s0->{coalesced}, 0, 'oversized: nothing coalesced');
	my $fb = ($s1->{by}{'coalesce-fallback:not stored'} // 0) - ($s0->{by}{'coalesce-fallback:not stored'} // 0);
	my $ov = ($s1->{by}{'bypass:oversized'} // 0) - ($s0->{by}{'bypass:oversized'} // 0);
	ok($fb >= 1, "oversized: waiters fell back ($fb)");
	is($fb + $ov, 8, 'oversized: every client either led a fill (not stored) or fell back')
	  or diag(explain($s1->{by}));
}

# a fill that fails (its origin backend is terminated): every waiter runs its own
# query and gets the right answer; a waiter that disconnects is dropped safely
{
	my $sql = 'SELECT hd_slow(count(*) + 1, 2) FROM t';
	my $f0 = cache_status()->{by}{'coalesce-fallback:not stored'} // 0;
	local $ENV{PGPASSWORD} = $PW;
	my @cmd = ('psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
		'-d', 'app', '-c', $sql);
	my ($lout, $lerr) = ('', '');
	my $leader = IPC::Run::start(\@cmd, '<', \undef, '>', \$lout, '2>', \$lerr, IPC::Run::timeout(60));
	sleep 0.3;	# its analysis done, its fill running
	my $quitter = IPC::Run::start(\@cmd, '<', \undef, '>', \my $qo, '2>', \my $qe, IPC::Run::timeout(60));
	my @h;
	my @out = ('', '', '');
	push @h, IPC::Run::start(\@cmd, '<', \undef, '>', \$out[$_], '2>', \my $e, IPC::Run::timeout(60))
	  for 0 .. 2;
	sleep 0.3;
	$quitter->kill_kill;	# a waiter goes away
	is($node->safe_psql('app', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			. "WHERE query = '$sql' AND state = 'active'"), '1', 'fill failure: the fill\'s backend is terminated');
	$_->finish for @h;
	$leader->finish;
	chomp @out;
	is(scalar(grep { $_ eq '4' } @out), 3, 'fill failure: every waiter still gets the right answer')
	  or diag(explain(\@out));
	my $fb = (cache_status()->{by}{'coalesce-fallback:not stored'} // 0) - $f0;
	ok($fb >= 3, "fill failure: the waiters fell back ($fb)") or diag(explain(cache_status()->{by}));
	like($lerr, qr/terminat|lost|closed/i, 'fill failure: the fill\'s own client gets the error');
	is(sel('SELECT 1 FROM items LIMIT 1'), '1', 'the agent is fine');
}

# ---------------------------------------------------------------------------
# Stale-while-revalidate: config swr (max-age 1, swr 5).
{
	my %o = (dbname => 'swr', cfg => 'swr');
	my $q = 'SELECT v FROM t WHERE id = 1';
	ok(wait_for(sub { (cache_status('swr')->{connected} // '') eq 'yes' }, 15),
		'swr: the config\'s stream connects');
	is(warm($q, %o), 'a', 'swr: the entry is cached');
	sleep 1.5;	# expired, within swr
	my $s0 = cache_status('swr');
	is(sel($q, %o), 'a', 'swr: a read at 1.5 s gets the (unchanged) value');
	my $s1 = cache_status('swr');
	is($s1->{stale} - $s0->{stale}, 1, 'swr: served stale (SHOW CACHE counts it)');
	is($s1->{misses} - $s0->{misses}, 0, 'swr: no miss');
	is($s1->{refreshes} - $s0->{refreshes}, 1, 'swr: one background refresh started');
	ok(wait_for(sub { cache_status('swr')->{stored} > $s0->{stored} }, 5),
		'swr: the refresh stored a new entry');
	my $h0 = cache_status('swr')->{hits};
	is(sel($q, %o), 'a', 'swr: the next read');
	is(cache_status('swr')->{hits}, $h0 + 1, 'swr: is a fresh hit');

	# concurrent stale reads start one refresh
	sleep 1.5;
	$s0 = cache_status('swr');
	my @r = concurrent(4, $q, dbname => 'swr');
	$s1 = cache_status('swr');
	is(scalar(grep { $_ eq 'a' } @r), 4, 'swr: 4 concurrent readers get the value');
	ok($s1->{refreshes} - $s0->{refreshes} <= 1, 'swr: at most one refresh for them')
	  or diag($s1->{refreshes} - $s0->{refreshes});

	# an invalidated entry is never served, even within swr
	sleep 1.5;	# stale again
	my $inv0 = cache_status('swr')->{invalidated};
	$node->safe_psql('app', "UPDATE t SET v = 'z' WHERE id = 1");
	ok(wait_for(sub { cache_status('swr')->{invalidated} > $inv0 }, 5),
		'swr: the write invalidated the stale entry');
	my $old = 0;
	my $end = time + 2.5;
	while (time < $end)
	{
		$old++ if sel($q, %o) ne 'z';
	}
	is($old, 0, 'swr: after the invalidation, never the old value (stale or not)');

	# read your writes applies to stale entries too
	is(warm($q, %o), 'z', 'swr: cached again');
	sleep 1.5;
	my ($rc, $out) = q_agent(%o, sql => [ "UPDATE t SET v = 'y' WHERE id = 1", $q ]);
	is($out, "y\n", 'swr: a client reads its own write, not the stale entry');
}

$agent->signal('TERM');
$agent->finish;
done_testing();
