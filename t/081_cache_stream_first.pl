# The change stream before the clients (issue 13): when a change record and a
# client's read are both waiting for the agent, the agent applies the record
# first, so the read does not get an entry the record invalidates.
#
# Deterministic, no timing: the agent is stopped (SIGSTOP); a row is updated
# on the origin, and the test waits until the walsender has sent the commit
# (pg_stat_replication.sent_lsn), so the record waits in the agent's socket;
# then a read of the cached row is sent through the agent and waits in its
# client socket; the agent is continued (SIGCONT). Both sockets are readable
# at the same wake-up: the read must show the new value. (Before the stream's
# watcher had a higher priority than client I/O, libev ran the client's
# callback first and the read was a hit on the old entry.)
#
# max_lag is an hour, so that the stop does not make the bounded mode refuse
# hits (which would make the read fresh for another reason).
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use PgWire;

CacheHarness::setup(tag => '081_cache_stream_first', node => 'origin', max_lag => '1h');
ok(start_agent(), 'the agent listens');
ok(stream_ready(),
	'the config\'s change stream connects');

my $c = raw_connect('app', $PW, 'app');

# the value of $sql through $c, and whether it was a hit
sub read_value
{
	my ($sql) = @_;
	my $h0 = cache_status()->{hits};
	my $r = w_query($c, $sql, 30);
	return ($r->{rows}[0][0], cache_status()->{hits} > $h0);
}

# The origin's WAL position after a write, and a wait until the config's
# walsender has sent up to it.
sub sent_past
{
	my ($lsn) = @_;
	return wait_for(sub {
		$node->safe_psql('app', "SELECT count(*) FROM pg_stat_replication r
			JOIN pg_replication_slots s ON s.active_pid = r.pid
			WHERE s.slot_name = 'hyperdrive_app' AND r.sent_lsn >= '$lsn'") eq '1';
	}, 30);
}

for my $round (1 .. 3)
{
	my $sql = "SELECT name FROM items WHERE id = $round";
	my ($v, $hit);
	ok(wait_for(sub { ($v, $hit) = read_value($sql); $hit }, 10), "round $round: the row is cached");
	my $new = "changed-$round";
	my $pid = agent_pid();
	kill 'STOP', $pid;
	$node->safe_psql('app', "UPDATE items SET name = '$new' WHERE id = $round");
	my $lsn = $node->safe_psql('app', 'SELECT pg_current_wal_lsn()');
	my $sent = sent_past($lsn);
	ok(w_send($c, pq_query($sql)), "round $round: the read is sent while the agent is stopped");
	kill 'CONT', $pid;
	ok($sent, "round $round: the walsender sent the commit while the agent was stopped");
	my $r = w_result($c, 30);
	is($r->{rows}[0][0], $new, "round $round: the read shows the new value (the record was applied first)");
}

# the same value again: now a fill, then a hit of the new entry
my ($v, $hit);
ok(wait_for(sub { ($v, $hit) = read_value('SELECT name FROM items WHERE id = 1'); $hit }, 10),
	'the new value is cached again');
is($v, 'changed-1', 'and it is the new one');

done_testing();
