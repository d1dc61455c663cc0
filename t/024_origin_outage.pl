# A long origin outage with clients trying all along (docs/agent.md,
# server_login_retry): each client gets a clear 08001 at once (no hang),
# the pool tries the origin at most once per server_login_retry whatever the
# number of clients (no flood), and once the origin is back a client gets in
# within about server_login_retry, however long the outage was (no back-off
# grown to tens of seconds, no stale "Connection refused").
#
# Needs agent/hyperdrive (make agent).
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'outage-pw-27';
my $OUTAGE = 16;	# seconds: a back-off doubling from 1 s would be at 16 s by then

my $node = start_origin('origin');
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'; CREATE DATABASE app OWNER app");

my $agent = hd_agent(name => '024_origin_outage',
	settings => "log_level = info\nauth_type = password\nserver_login_retry = 1s\n"
	  . "server_connect_timeout = 2s\nquery_wait_timeout = 30\n",
	configs => [ [ 'create app', 'app',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app", '--sslmode', 'disable' ] ]);
ok($agent, 'the agent listens');
my ($log, $aport) = @$agent{qw(log port)};
$PgWire::PORT = $aport;
%PgWire::LOGIN = (user => 'app', password => $PW, db => 'app', timeout => 40);

# $n clients log in and send SELECT 1 together. For each: [SQLSTATE or 'ok', seconds].
sub round
{
	my ($n) = @_;
	my $t0 = time;
	my @c = map { w_login_send() } 1 .. $n;
	@c = map { w_login(conn => $_, sent => 1) } @c;
	for my $c (@c) { w_send($c, fmsg('Q', "SELECT 1\0")) if $c->{ready}; }
	my @out;
	for my $c (@c)
	{
		my $state;
		if (!$c->{ready})
		{
			$state = $c->{error}{C} // 'none';
		}
		else
		{
			my $r = w_result($c, 40);
			$state = @{ $r->{errors} } ? $r->{errors}[0]{C} : ($r->{rows}[0][0] // '') eq '1' ? 'ok'
			  : $r->{timeout} ? 'timeout' : 'none';
			close $c->{sock};
		}
		push @out, [ $state, time - $t0 ];
	}
	return @out;
}

is_deeply([ map { $_->[0] } round(2) ], [ 'ok', 'ok' ], 'clients get in while the origin is up');

# The outage: clients keep coming, eight at a time, with the same statement
# (the config caches: they also wait for one another's analysis of it, and
# each must still be answered by the attempt that failed while it waited).
my $log_pos = -s $log;
$node->stop('fast');
my $t_down = time;
my (%states, $slowest, $rounds);
$slowest = 0;
while (time < $t_down + $OUTAGE)
{
	my $t_round = time - $t_down;
	my @r = round(8);
	my $max = 0;
	for my $r (@r)
	{
		$states{ $r->[0] }++;
		$max = $r->[1] if $r->[1] > $max;
	}
	$slowest = $max if $max > $slowest;
	note(sprintf('%.1f s into the outage: %s; the slowest after %.1f s', $t_round,
		join(' ', map { $_->[0] } @r), $max));
	$rounds++;
	sleep 0.2;
}
my $attempts = () = slurp_from($log, $log_pos) =~ /origin connection as app failed/g;
is_deeply([ keys %states ], ['08001'], "during the outage every client gets 08001 ($rounds rounds of 8)")
  or diag(explain \%states);
ok($slowest < 4, sprintf('and gets it without hanging, within about server_login_retry (the slowest took %.1f s)', $slowest));
ok($attempts >= 3 && $attempts <= $OUTAGE + 3,
	"the pool tried the origin at most about once a second, not once per client ($attempts attempts)");

# The origin is back: a client gets in within about server_login_retry.
$node->start;
my $t_up = time;
my $first_ok;
while (time < $t_up + 40)
{
	my ($r) = round(1);
	if ($r->[0] eq 'ok') { $first_ok = time - $t_up; last; }
	sleep 0.1;
}
ok(defined $first_ok && $first_ok < 5,
	sprintf('a client gets in %.1f s after the origin is back (outage of %d s)',
		$first_ok // -1, $OUTAGE));
is_deeply([ map { $_->[0] } round(4) ], [ ('ok') x 4 ], 'and so do the next ones');

$agent->signal('INT');
$agent->finish;
done_testing();
