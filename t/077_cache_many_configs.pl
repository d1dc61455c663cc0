# Many caching configs on one agent: every config's replication slot
# advances. The agent confirms a config's position to the origin only after
# the store has made it durable; that confirmation must reach every config,
# however many there are (no fixed-size table may leave some out, or their
# slots never advance and the origin keeps its WAL for ever).
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;

# More than any fixed array the agent has held (256), and not much more: each
# config holds a walsender and a freshness-probe connection on the origin.
my $NCONFIGS = 260;
my $PW = 'many-Secret-77';

my $node = start_origin('origin', logical => 1,
	conf => "autovacuum = off\nmax_connections = " . ($NCONFIGS + 40) . "\n"
	  . "max_wal_senders = " . ($NCONFIGS + 10) . "\n"
	  . "max_replication_slots = " . ($NCONFIGS + 10) . "\n"
	  . "shared_buffers = 16MB\n");
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', <<'SQL');
CREATE EXTENSION hyperdrive;
GRANT USAGE ON SCHEMA hyperdrive TO PUBLIC;
SET ROLE app;
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'apple');
SQL

my $agent = hd_agent(name => '077_cache_many_configs',
	settings => "log_level = info\nmax_lag = 1s\n", start => 0);
my $ini = $agent->{ini};

# The configs, created with the CLI as a user would (one run each).
my $created = 0;
for my $i (1 .. $NCONFIGS)
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $HD, 'create', sprintf('c%03d', $i),
			"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
			'--sslmode', 'disable', '--max-age', '300', '-c', $ini ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	if ($? == 0) { $created++ } else { diag("create c$i: $err") }
}
is($created, $NCONFIGS, "$NCONFIGS caching configs created");

ok($agent->start, 'the agent starts');

# Every config's stream makes its slot.
sub slots
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'hyperdrive_c%'");
}
ok(wait_for(sub { slots() == $NCONFIGS }, 240), "each config has its slot")
  or diag('slots: ' . slots());

# A commit after every stream is up: each slot must confirm past it, which it
# does only once the agent has stored the change and synced the store.
my $lsn = $node->safe_psql('app',
	"UPDATE items SET name = 'pear' WHERE id = 1; SELECT pg_current_wal_insert_lsn()");
my $sql = "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'hyperdrive_c%' "
  . "AND (confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < '$lsn') ORDER BY 1";
my $behind;
ok(wait_for(sub { $behind = $node->safe_psql('postgres', $sql); $behind eq '' }, 120),
	'every slot confirms past a later commit')
  or diag('slots that never advanced: ' . scalar(split /\n/, $behind) . ': '
	  . join(' ', grep { defined } (split /\n/, $behind)[0 .. 9]));

$agent->kill_kill;
$node->stop;
done_testing();
