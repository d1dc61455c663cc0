# CacheHarness: what the result-cache tests (t/070_cache_invalidation.pl to
# t/076_cache_ddl.pl) share: an origin with the extension and the fixtures
# they read, an agent configured for them (hd_agent; cleartext passwords from
# clients, so that a PgWire client logs in simply; an admin console), its
# configs app, app_alice, app_bob and nocache, and the helpers that talk to
# both.
#
#   use lib dirname(__FILE__);
#   use CacheHarness;
#   CacheHarness::setup(tag => '070_cache_invalidation', node => 'origin');
#
# setup() fills the exported variables; extra_conf / extra_sql add to the
# origin's postgresql.conf and to database app (as a superuser); max_lag is
# the agent's setting (default 1s).
package CacheHarness;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

our @EXPORT = qw($hd $PW $node $oport $tmp $ini $log $aport $mport $agent
  hdcli app_config start_agent agent_pid admin q_agent sel as cache_status wait_for warm raw_connect
  exchange_both stream_ready);

our $hd = $HD;
our $PW = 'app-Secret-70';
our ($node, $oport, $tmp, $ini, $log, $aport, $mport, $agent);

sub setup
{
	my (%o) = @_;

	$node = start_origin($o{node}, logical => 1,
		# max_connections: each caching config also holds a freshness probe connection
		conf => "autovacuum = off\nsynchronous_commit = local\nmax_connections = 40\n"
		  . ($o{extra_conf} // ''));
	$oport = $node->port;
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
	$node->safe_psql('app', $o{extra_sql}) if $o{extra_sql};

	# the agent
	$aport = PostgreSQL::Test::Cluster::get_free_port();
	$mport = PostgreSQL::Test::Cluster::get_free_port();
	$agent = hd_agent(name => $o{tag}, port => $aport, start => 0,
		files => { 'users.txt' => qq{"ops" "ops-pw"\n} },
		settings => "log_level = info\nquery_wait_timeout = 20\n"
		  . "auth_type = password\nadmin_users = ops\nauth_file = users.txt\n"
		  . "max_lag = " . ($o{max_lag} // '1s') . "\ncache_max_entry_bytes = 64kB\n"
		  . "metrics_addr = 127.0.0.1:$mport\n");
	($tmp, $ini, $log) = @$agent{qw(dir ini log)};
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
	return;
}

sub hdcli { my ($name, @args) = @_; return hd_cli($ini, $name, @args); }

# Another config of role app on database app (caching on, max-age 300),
# with more options of `hyperdrive create` (say, --pool-mode session).
sub app_config
{
	my ($name, $what, @options) = @_;
	return hdcli("create $name ($what)", 'create', $name,
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--max-age', '300', @options);
}


# A PgWire connection through the agent, logged in (it dies otherwise).
sub raw_connect
{
	my ($user, $pw, $db) = @_;
	return w_login_or_die(port => $aport, user => $user, password => $pw, db => $db);
}

# The same bytes on a caching connection ($cached) and then on a plain one
# ($plain, the origin's answer): the caching side's replies, the plain
# side's (ParameterStatus left out of both), and SHOW CACHE's row (of config
# app) before and after the caching side's exchange.
sub exchange_both
{
	my ($cached, $plain, $bytes, $nz) = @_;
	my $before = cache_status();
	my $got = strip_status(w_exchange($cached, $bytes, $nz));
	my $after = cache_status();
	my $want = strip_status(w_exchange($plain, $bytes, $nz));
	return ($got, $want, $before, $after);
}
# Starts the agent (again), its output appended to $log; 1 once it listens.
# pipe => 1: through a pipe (cat appends it), so that a file size limit put
# on the agent (agent_pid()) applies to its own files only, not to the log.
# env => { NAME => value }: more environment for the agent's process.
sub start_agent
{
	my (%o) = @_;
	my %env = %{ $o{env} // {} };
	local @ENV{ keys %env } = values %env;
	return $agent->start(pipe => $o{pipe}, wait => 10, poll => 0.1) ? 1 : 0;
}
# The agent's process id.
sub agent_pid { return $agent->pid; }

# Commands on the admin console as ops; returns (exit status, stdout, stderr)
sub admin
{
	my (@sql) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = 'ops-pw';
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'ops',
			'-d', 'hyperdrive', map { ('-c', $_) } @sql ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	return ($? >> 8, $out, $err);
}

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
			coalesced => $f[12], stale => $f[13], refreshes => $f[14],
			ddl_invalidations => $f[15], fill_relations_by_value => $f[16],
			fill_relations_whole => $f[17], changes_by_value => $f[18],
			changes_by_column => $f[19], changes_by_relation => $f[20], changes_all => $f[21],
			strict_waits => $f[22], strict_probes => $f[23]);
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

# Whether config $name's change stream is connected and a first freshness
# probe has been applied (SHOW CACHE lag >= 0), within $secs. Connected alone
# is not enough: until the first probe answers, a hit is a lagging bypass.
sub stream_ready
{
	my ($name, $secs) = @_;
	return wait_for(sub {
			my $s = cache_status($name);
			($s->{connected} // '') eq 'yes' && ($s->{lag} // -1) >= 0;
		}, $secs // 15);
}

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

1;
