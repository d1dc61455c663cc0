# bench/delay_relay.c, the far-away origin of bench/run's far and mysql
# scenarios: its figures are only as true as the relay's contract (header of
# the file). Built here, in front of an echo server on loopback:
# - a round trip through it takes at least the delay, and a new connection's
#   first one at least one round trip more (the TCP handshake it stands for);
# - a server that speaks first (MySQL's greeting) is heard no sooner than two
#   round trips after the connect, as over a real network;
# - bytes arrive whole and in order (16 MiB, both ways at once);
# - a half-close is forwarded after the data before it;
# - a connection to a port where nothing listens is closed, not left open;
# - SIGTERM stops it.
# Only lower bounds on time are tested (never how fast: bench/ measures that).
use strict;
use warnings;

use Digest::SHA qw(sha1_hex);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY SHUT_WR);
use Time::HiRes qw(time);
use Test::More;

my $src = dirname(__FILE__) . '/../bench/delay_relay.c';
my $dir = tempdir(CLEANUP => 1);
my $relay = "$dir/delay_relay";
my $cc = `cc -O2 -Wall -Wextra -Werror $src -o $relay 2>&1`;
is($?, 0, 'bench/delay_relay.c builds with -Wall -Wextra -Werror') or diag($cc);

# An echo server in a child process: echoes until EOF, then half-closes.
my $echo = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
	ReuseAddr => 1) or die "listen: $!";
my $echo_port = $echo->sockport;
my $echo_pid = fork // die "fork: $!";
if ($echo_pid == 0)
{
	$SIG{CHLD} = 'IGNORE';
	while (my $c = $echo->accept)
	{
		next if fork;
		my $buf;
		while (sysread($c, $buf, 65536))
		{
			my $off = 0;
			$off += syswrite($c, $buf, length($buf) - $off, $off) while $off < length($buf);
		}
		shutdown($c, SHUT_WR);
		exit 0;
	}
	exit 0;
}
close $echo;

# A server that speaks first: "greet" on every connection, then close.
my $greeter = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
	ReuseAddr => 1) or die "listen: $!";
my $greeter_port = $greeter->sockport;
my $greeter_pid = fork // die "fork: $!";
if ($greeter_pid == 0)
{
	while (my $c = $greeter->accept)
	{
		syswrite($c, 'greet');
		close $c;
	}
	exit 0;
}
close $greeter;

# Start a relay in front of TARGET with DELAY ms; returns (pid, port). Its
# stdout stays open here (closing a piped open's handle waits for the child).
my @relay_out;
sub start_relay
{
	my ($target, $delay) = @_;
	my $pid = open(my $out, '-|', $relay, '--target', $target, '--delay-ms', $delay)
	  // die "start relay: $!";
	my $line = <$out>;
	my ($port) = ($line // '') =~ /^listening (\d+)$/;
	push @relay_out, $out;
	return ($pid, $port);
}

sub connect_to
{
	my ($port) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10)
	  or die "connect $port: $!";
	setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
	return $s;
}

# read exactly N bytes (undef on EOF first)
sub read_n
{
	my ($s, $n) = @_;
	my $got = '';
	while (length($got) < $n)
	{
		my $r = sysread($s, my $buf, $n - length($got));
		return undef unless $r;
		$got .= $buf;
	}
	return $got;
}

my $delay_ms = 20;
my ($pid, $port) = start_relay($echo_port, $delay_ms);
ok($port, "it prints 'listening PORT'");

my $t0 = time;
my $s = connect_to($port);
syswrite($s, 'first');
is(read_n($s, 5), 'first', 'the first bytes come back');
my $first_ms = (time - $t0) * 1000;
cmp_ok($first_ms, '>=', 2 * $delay_ms * 0.999,
	"a new connection's first round trip takes the delay twice (handshake + round trip): $first_ms ms");

my $min_ms;
for my $i (1 .. 5)
{
	my $t = time;
	syswrite($s, "ping$i");
	my $back = read_n($s, length("ping$i"));
	my $ms = (time - $t) * 1000;
	$min_ms = $ms if !defined $min_ms || $ms < $min_ms;
	is($back, "ping$i", "round trip $i: the same bytes back");
}
cmp_ok($min_ms, '>=', $delay_ms * 0.999, "every later round trip takes at least the delay: min $min_ms ms");

# 16 MiB each way at once (a writer process; this one reads), then EOF
my $blob = join('', map { pack('N', $_) x 16 } 0 .. (16 * 1024 * 1024 / 64 - 1));
my $writer = fork // die "fork: $!";
if ($writer == 0)
{
	my $off = 0;
	while ($off < length($blob))
	{
		my $w = syswrite($s, $blob, 1 << 20, $off);
		die "write: $!" unless defined $w;
		$off += $w;
	}
	shutdown($s, SHUT_WR);
	exit 0;
}
my $got = '';
while (1)
{
	my $r = sysread($s, my $buf, 1 << 20);
	die "read: $!" unless defined $r;
	last if $r == 0;
	$got .= $buf;
}
waitpid($writer, 0);
is(length($got), length($blob), '16 MiB through the relay and back, then EOF after the data');
is(sha1_hex($got), sha1_hex($blob), 'every byte in order');
close $s;

# the server speaks first
my ($pid3, $port3) = start_relay($greeter_port, $delay_ms);
$t0 = time;
my $g = connect_to($port3);
is(read_n($g, 5), 'greet', "a server's greeting comes through");
my $greet_ms = (time - $t0) * 1000;
cmp_ok($greet_ms, '>=', 2 * $delay_ms * 0.999,
	"it arrives two round trips after the connect (handshake, then the server's first bytes): $greet_ms ms");
is(sysread($g, my $rest, 10), 0, "then the server's close, forwarded as EOF");
close $g;

# a target where nothing listens: the client's connection is closed (the
# relay says so on stderr, which goes to this test's)
my $closed = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
  or die "listen: $!";
my $dead_port = $closed->sockport;
close $closed;
my ($pid2, $port2) = start_relay($dead_port, $delay_ms);
my $s2 = connect_to($port2);
syswrite($s2, 'hello');
my $r;
eval {
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 10;
	$r = sysread($s2, my $buf, 10);
	alarm 0;
};
ok(!$@ && defined $r && $r == 0 || !defined $r && !$@,
	'a connection whose origin refuses is closed (EOF or reset), not left hanging') or diag($@);

for my $p ($pid, $pid2, $pid3)
{
	kill 'TERM', $p;
	is(waitpid($p, 0), $p, 'SIGTERM stops it');
	is($? >> 8, 0, '... with status 0');
}
kill 'TERM', $echo_pid, $greeter_pid;
waitpid($_, 0) for $echo_pid, $greeter_pid;

done_testing();
