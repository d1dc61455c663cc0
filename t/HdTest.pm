# HdTest: what the TAP tests that start an origin and the agent share.
#
#   use lib dirname(__FILE__);
#   use HdTest;
#   my $node = start_origin('origin', logical => 1, conf => "max_connections = 60\n");
#   my $agent = hd_start_agent(ini => $ini, log => $log, port => $aport);
#
# Loading it sets PG_REGRESS when prove did not (PostgreSQL::Test::Cluster's
# init needs it; prove_installcheck sets it, a plain prove does not), and
# bails out when agent/hyperdrive is not built.
package HdTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw($HD start_origin slurp_from write_file wait_for hd_cli
  hd_start_agent hd_agent_refuses hd_agent_pid);

# the agent's binary
our $HD = File::Spec->rel2abs(dirname(__FILE__) . '/../agent/hyperdrive');
BAIL_OUT("$HD is missing: run 'make agent' first") unless -x $HD;

if (!$ENV{PG_REGRESS})
{
	my $pkglibdir = `pg_config --pkglibdir`;
	chomp $pkglibdir;
	$ENV{PG_REGRESS} = "$pkglibdir/pgxs/src/test/regress/pg_regress" if $pkglibdir;
}

# Whether this server has output_plugin_libraries (Debian's 15.19 and later):
# then the hyperdrive plugin must be listed in it.
my $plugin_list;
sub needs_plugin_list
{
	$plugin_list //= (`postgres --describe-config 2>/dev/null` =~ /^output_plugin_libraries\b/m) ? 1 : 0;
	return $plugin_list;
}

# A started origin on 127.0.0.1 with SCRAM passwords. Options:
#   logical => 1    wal_level = logical (and the plugin listed where needed),
#                   replication connections allowed like the others
#   init_extra      arguments for initdb (e.g. [ '--locale=C' ])
#   conf            more postgresql.conf lines
#   hba             the whole pg_hba.conf instead of the default: local trust,
#                   TCP from 127.0.0.1 with scram-sha-256
sub start_origin
{
	my ($name, %o) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(($o{logical} ? (allows_streaming => 'logical') : ()),
		($o{init_extra} ? (extra => $o{init_extra}) : ()));
	$node->append_conf('postgresql.conf',
		"listen_addresses = '127.0.0.1'\npassword_encryption = 'scram-sha-256'\n");
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'\n")
	  if $o{logical} && needs_plugin_list();
	$node->append_conf('postgresql.conf', $o{conf}) if $o{conf};
	my $hba = $o{hba} // "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	  . ($o{logical} ? "local replication all trust\nhost replication all 127.0.0.1/32 scram-sha-256\n" : '');
	write_file($node->data_dir . '/pg_hba.conf', $hba);
	$node->start;
	return $node;
}

# The end of a (log) file from $offset, at most $max bytes of it.
sub slurp_from
{
	my ($path, $offset, $max) = @_;
	open my $fh, '<', $path or return '';
	seek $fh, $offset // 0, 0;
	local $/;
	my $text = <$fh> // '';
	close $fh;
	$text = "[... " . (length($text) - $max) . " bytes left out ...]\n" . substr($text, -$max)
	  if defined $max && length($text) > $max;
	return $text;
}

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
	return;
}

# Polls $cond every 50 ms for up to $seconds (default 10); its last value.
sub wait_for
{
	my ($cond, $seconds) = @_;
	my $deadline = time + ($seconds // 10);
	my $v;
	while (1)
	{
		$v = $cond->();
		return $v if $v || time > $deadline;
		usleep(50_000);
	}
}

# Runs `hyperdrive ARGS -c INI` (the config CLI) as a test named "cli: NAME";
# returns its standard output.
sub hd_cli
{
	my ($ini, $name, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $HD, @args, '-c', $ini ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(30));
	is($?, 0, "cli: $name") or diag($err);
	return $out;
}

# Starts `hyperdrive agent -c INI`, its output appended to the log file, under
# a wrapper command if one is given (e.g. [ 'prlimit', '--nofile=256:256', '--' ];
# it must exec the agent). Options: ini, log, port (where it listens, on
# addr, default 127.0.0.1), wrapper. Returns the IPC::Run harness once the
# agent accepts connections, or undef if it has not within 30 s (or exited).
sub hd_start_agent
{
	my (%o) = @_;
	my $h = IPC::Run::start([ @{ $o{wrapper} // [] }, $HD, 'agent', '-c', $o{ini} ],
		'<', \undef, '>>', $o{log}, '2>&1');
	my $up = wait_for(sub {
		return 1 if IO::Socket::INET->new(PeerAddr => $o{addr} // '127.0.0.1',
			PeerPort => $o{port}, Timeout => 1);
		return 0 if $h->pumpable;
		return -1;				# exited
	}, 30);
	return $h if $up && $up > 0;
	$h->kill_kill;
	return undef;
}

# Runs `hyperdrive agent -c INI` (under a wrapper, as hd_start_agent) when it
# should refuse to start: returns (exit status, its output), or (undef, output)
# if it was still running after 30 s (then it is killed).
sub hd_agent_refuses
{
	my (%o) = @_;
	my $out = '';
	my $h = IPC::Run::start([ @{ $o{wrapper} // [] }, $HD, 'agent', '-c', $o{ini} ],
		'<', \undef, '>', \$out, '2>&1');
	my $exited = wait_for(sub { $h->pump_nb; !$h->pumpable }, 30);
	if (!$exited)
	{
		$h->kill_kill;
		return (undef, $out);
	}
	$h->finish;
	return ($h->result(0), $out);
}

# The agent's process id (a wrapper that execs keeps it).
sub hd_agent_pid
{
	my ($h) = @_;
	return $h->{KIDS}[0]{PID};
}

1;
