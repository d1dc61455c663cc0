# One client must not grow the agent's memory without bound:
#  - a client whose login waits for its pool's first origin connection sends
#    a lot meanwhile: the agent reads only so much of it;
#  - large messages (a Query, a Bind of a large value, COPY data, the unnamed
#    statement's Parse) stream through to the origin instead of being held
#    whole: three clients each stalling 100 bytes before the end of a 64 MB
#    Query leave the agent's memory where it was, and each statement still
#    runs when its last bytes come;
#  - a named Parse larger than the agent keeps is refused with 54000 (and its
#    batch skipped to Sync, as after any error); other message types over
#    PostgreSQL's 10000-byte limit end the session.
# The agent's memory is its resident set size (/proc/PID/status VmRSS).
use strict;
use warnings;

use File::Basename qw(dirname);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'app-Secret-29';
my $MB = 1024 * 1024;

my $node = start_origin('origin');
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN PASSWORD '$PW';
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', 'SET ROLE app; CREATE TABLE blobs (id int, b text)');

# an "origin" that accepts TCP connections and never says a word
my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
	Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
my $mute_port = $mute->sockport;

my $agent = hd_agent(name => '029_large_messages',
	settings => "log_level = info\nquery_wait_timeout = 60\nserver_connect_timeout = 60\n",
	configs => [
		[ 'create app (limit 3)', 'app',
			"--connection-string=postgresql://app:$PW\@127.0.0.1:" . $node->port . '/app',
			'--sslmode', 'disable', '--origin-connection-limit', '3', '--caching-disabled' ],
		[ 'create mute (an origin that never answers)', 'mute',
			"--connection-string=postgresql://app:$PW\@127.0.0.1:$mute_port/app",
			'--sslmode', 'disable', '--caching-disabled' ]
	],
	bail => 1);
my $aport = $agent->{port};
my $pid = $agent->pid;

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'app');

sub rss_mb
{
	open my $fh, '<', "/proc/$pid/status" or return -1;
	while (<$fh>)
	{
		return $1 / 1024 if /^VmRSS:\s+(\d+)\s+kB/;
	}
	return -1;
}

sub ex { my ($c, $bytes) = @_; w_send($c, $bytes); return w_result($c, 60); }

# ---------------------------------------------------------------------------
# Before login: the pool's first origin connection never comes.
{
	my $base = rss_mb();
	my $c = w_connect();
	w_send($c, startup_packet(user => 'app', database => 'mute'));
	my ($type, $body) = w_msg($c, 10);
	# cleartext or SCRAM: log in as far as the agent goes without the origin
	my $l = w_login(conn => w_connect(), db => 'mute', timeout => 2);
	ok($l->{auth_ok} && !$l->{ready}, 'a login to "mute" passes authentication and waits for the origin');
	my $junk = fmsg('Q', 'SELECT ' . ('1' x (1024 * 1024)) . "\0") x 100;
	my $sent = w_send_some($l, $junk, 10);
	sleep 1;
	my $grew = rss_mb() - $base;
	note(sprintf('sent %.0f MB while waiting; the agent grew by %.1f MB', $sent / $MB, $grew));
	ok($grew < 20, sprintf('the agent holds at most a little of it (grew %.1f MB)', $grew));
	close $_->{sock} for $c, $l;
}

# ---------------------------------------------------------------------------
# Large messages stream through.
{
	my $size = 64 * $MB;
	my $base = rss_mb();
	my @clients = map { w_login() } 1 .. 3;
	ok(!grep({ !$_->{ready} } @clients), 'three clients logged in');
	my $q = fmsg('Q', "SELECT length('" . ('x' x $size) . "')\0");
	my $tail = substr($q, -100, 100, '');
	for my $c (@clients)
	{
		w_send($c, $q);			# all but its last 100 bytes
	}
	sleep 1;
	my $grew = rss_mb() - $base;
	ok($grew < 30, sprintf('three 64 MB queries short of their last 100 bytes: the agent grew '
		  . 'by %.1f MB (they went on to the origin)', $grew));
	for my $c (@clients)
	{
		w_send($c, $tail);
		my $r = w_result($c, 60);
		is($r->{rows}[0][0] // 'error', $size, 'the rest comes: the statement runs on the origin');
	}

	my $c = $clients[0];
	my $v = 'y' x (20 * $MB);
	my $r = ex($c, pq_parse('big', 'SELECT length($1::text)') . pq_bind('big', [$v])
		  . pq_execute() . pq_sync());
	is($r->{rows}[0][0] // 'error', 20 * $MB, 'a named statement bound to a 20 MB value (renamed as it streams)');
	$r = ex($c, pq_parse('', 'SELECT length($1::text), $2::int') . pq_bind('', [ $v, 7 ])
		  . pq_execute() . pq_sync());
	is_deeply($r->{rows}, [ [ 20 * $MB, 7 ] ], 'the unnamed statement bound to it');
	my $bigsql = "SELECT length('" . ('z' x (2 * $MB)) . "'), \$1::int";
	$r = ex($c, pq_parse('', $bigsql) . pq_bind('', [5]) . pq_execute() . pq_sync());
	is_deeply($r->{rows}, [ [ 2 * $MB, 5 ] ], 'a 2 MB Parse of the unnamed statement, bound in its batch');

	w_send($c, fmsg('Q', "COPY blobs FROM STDIN\0"));
	my ($type) = w_msg($c, 10);
	is($type, 'G', 'COPY FROM STDIN starts');
	w_send($c, fmsg('d', "1\t" . ('c' x (30 * $MB)) . "\n") . fmsg('c', ''));
	$r = w_result($c, 60);
	is($r->{tags}[0] // 'error', 'COPY 1', 'one 30 MB CopyData message');
	$r = ex($c, fmsg('Q', "SELECT length(b) FROM blobs WHERE id = 1\0"));
	is($r->{rows}[0][0], 30 * $MB, '... stored whole');

	$r = ex($c, pq_parse('toolarge', "SELECT '" . ('w' x (2 * $MB)) . "'") . pq_bind('toolarge')
		  . pq_execute() . pq_sync());
	is($r->{errors}[0]{C} // 'no error', '54000', 'a 2 MB named Parse: 54000');
	like($r->{errors}[0]{M} // '', qr/too large for the agent to keep/, '... saying why');
	is(scalar @{ $r->{errors} }, 1, '... one error: the rest of its batch was skipped');
	is(val($c, "SELECT 'goes on'"), 'goes on', 'the session goes on');

	my $d = w_login();
	w_send($d, fmsg('D', 'S' . ('n' x 20000) . "\0"));
	my ($t2, $b2) = w_msg($d, 10);
	is(err_fields($b2)->{C} // $t2, '08P01', 'a 20 kB Describe (PostgreSQL takes 10000 bytes): 08P01');
	close $_->{sock} for @clients, $d;
}

sub val
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql, 30);
	return @{ $r->{errors} } ? 'ERROR ' . $r->{errors}[0]{C} : $r->{rows}[0][0];
}

is(val(w_login(), "SELECT 'alive'"), 'alive', 'the agent still serves');
$agent->kill_kill;
done_testing();
