# HdTest: what the TAP tests that start an origin and the agent share.
#
#   use lib dirname(__FILE__);
#   use HdTest;
#   my $node = start_origin('origin', logical => 1, conf => "max_connections = 60\n");
#   my $agent = hd_agent(name => 'pooler', settings => "log_level = info\n",
#       configs => [ [ 'create main', 'main', "--connection-string=$url" ] ])
#     or BAIL_OUT('the agent did not start');
#   # $agent->{port}, {ini}, {log}, {dir}; $agent->signal('HUP'); $agent->finish
#
# Loading it sets PG_REGRESS when prove did not (PostgreSQL::Test::Cluster's
# init needs it; prove_installcheck sets it, a plain prove does not), and
# bails out when agent/hyperdrive is not built.
package HdTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Copy ();
use File::Spec;
use IO::Socket::INET;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw($HD start_origin slurp_from write_file wait_for hd_cli
  hd_agent hd_agent_refuses hd_which hd_node_packages hd_driver_run psql_table);

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

# Polls $cond every $interval seconds (default 0.05) for up to $seconds
# (default 10); its last value.
sub wait_for
{
	my ($cond, $seconds, $interval) = @_;
	my $deadline = time + ($seconds // 10);
	my $v;
	while (1)
	{
		$v = $cond->();
		return $v if $v || time > $deadline;
		usleep(($interval // 0.05) * 1_000_000);
	}
}

# The first executable $name on PATH, or undef.
sub hd_which
{
	my ($name) = @_;
	for my $dir (File::Spec->path)
	{
		my $path = "$dir/$name";
		return $path if -f $path && -x $path;
	}
	return undef;
}

# The driver tests' Node.js packages: package.json, package-lock.json and
# the *.mjs files of $src (tests/drivers, tests/mysql_drivers) copied into
# $dir (and tests/node_shared's beside it, in $dir/../node_shared), with node_modules: $src's own if a developer installed it there,
# else `npm ci` from the lockfile into $dir (never into the source tree; it
# needs npm and the npm registry, a test says whether it worked). Notes the
# versions of the packages named in $report. Returns 1 when the packages are
# there, 0 after a failed test (the caller ends the test).
sub hd_node_packages
{
	my ($src, $dir, @report) = @_;
	mkdir $dir or die "$dir: $!";
	opendir my $dh, $src or die "$src: $!";
	for my $f (readdir $dh)
	{
		next unless $f =~ /^(package\.json|package-lock\.json|.*\.mjs)$/;
		File::Copy::copy("$src/$f", "$dir/$f") or die "copy $f: $!";
	}
	closedir $dh;
	# what both suites share, where their '../node_shared/' imports find it
	my $shared = "$dir/../node_shared";
	unless (-d $shared)
	{
		mkdir $shared or die "$shared: $!";
		for my $f (glob("$src/../node_shared/*.mjs"))
		{
			File::Copy::copy($f, "$shared/" . File::Basename::basename($f))
			  or die "copy $f: $!";
		}
	}

	if (-d "$src/node_modules")
	{
		# installed by a developer (npm ci in $src): used as it is
		symlink("$src/node_modules", "$dir/node_modules")
		  or die "symlink node_modules: $!";
		note("using $src/node_modules");
	}
	else
	{
		my $npm = hd_which('npm');
		unless ($npm)
		{
			fail('npm is installed (needed to install the driver packages)');
			diag("node is installed but npm is not: apt-get install npm, or run npm ci in $src");
			return 0;
		}
		# npm must not write into HOME (the server user's may be read-only)
		local $ENV{npm_config_cache} = $ENV{npm_config_cache} // "$dir.npm-cache";
		local $ENV{npm_config_update_notifier} = 'false';
		local $ENV{npm_config_fund} = 'false';
		local $ENV{npm_config_audit} = 'false';
		my ($out, $err) = ('', '');
		my $ok = eval {
			IPC::Run::run(
				[ $npm, 'ci', '--prefix', $dir, '--ignore-scripts', '--no-audit', '--no-fund' ],
				'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(600));
		};
		$err .= "\nnpm ci: no result after 600s: $@" if $@;
		ok($ok, 'npm ci installs the driver packages from package-lock.json')
		  or diag("npm ci failed (exit $?; it needs the npm registry, or run npm ci in $src)\n$out$err");
		return 0 unless $ok;
		note($out . $err);
	}
	my $version = `node --version`;
	chomp $version;
	my $pkgs = '';
	for my $p (@report)
	{
		my $json = slurp_from("$dir/node_modules/$p/package.json", 0, 1 << 20);
		$pkgs .= " $p $1" if $json =~ /"version"\s*:\s*"([^"]+)"/;
	}
	note("node $version;$pkgs");
	return 1;
}

# Runs a driver test file (the command @{ $o{cmd} }, in the directory
# $o{dir}) as the test $o{name}, for at most $o{timeout} seconds: a hang (a
# reply the agent never forwards) fails this run only. Its output is a note
# when it passes; when it fails, a diag with $o{about} (what it ran
# against), then the agent's log $o{log} from the offset $o{log_start} if
# $o{log} is given. Returns 1 if it passed, 0 if it failed, -1 if it had
# not ended after $o{timeout} seconds.
sub hd_driver_run
{
	my (%o) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run($o{cmd}, '<', \undef, '>', \$out, '2>', \$err,
			init => sub { chdir $o{dir} or die "chdir $o{dir}: $!" },
			IPC::Run::timeout($o{timeout}));
	};
	$err .= "\nno result after $o{timeout}s: $@" if $@;
	if (ok($ok, $o{name}))
	{
		note($out . $err);
		return 1;
	}
	diag("@{ $o{cmd} } (exit $?), $o{about}:\n$out$err");
	diag("agent log while it ran:\n" . slurp_from($o{log}, $o{log_start}, 60000)) if $o{log};
	return $@ ? -1 : 0;
}

# psql -A -F '|' -P footer=off output (a header line, then rows) as
# ([column names], [rows as hashes by column name]).
sub psql_table
{
	my ($out) = @_;
	my @lines = split /\n/, $out;
	my @cols = split /\|/, (shift(@lines) // ''), -1;
	my @rows = map {
		my @v = split /\|/, $_, -1;
		my %h;
		@h{@cols} = @v;
		\%h
	} @lines;
	return (\@cols, \@rows);
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

# The one way the TAP tests set up and start an agent: its directory, its
# settings file, the files next to it, its configs (made with the CLI), then
# `hyperdrive agent` started. Options:
#   name      names its directory (a tempdir "hd_NAME") and its log
#             ($log_path/NAME_agent.log) unless dir / log are given
#   dir, log, ini (default DIR/hyperdrive.ini)
#   port      listen_port (default: a free port); addr: listen_addr (default
#             127.0.0.1, '' for none); state_dir is DIR/state
#   settings  the other [agent] lines (text); header => 0: settings is the
#             whole file
#   files     { name => text }: files written into DIR first (auth_file...)
#   configs   [ [ test name, config name, CLI arguments ... ], ... ]: each
#             `hyperdrive create CONFIG ARGS -c INI`, a test "cli: TEST NAME"
#   start     0: set up only (call ->start); else what ->start takes:
#             wrapper, pipe, timer, wait
#   bail      1: BAIL_OUT (with the log's start) if it does not start
# Returns an HdTest::Agent (a hash of the above: dir, ini, log, port, h: the
# IPC::Run harness), or undef if it did not start.
sub hd_agent
{
	my (%o) = @_;
	my $dir = $o{dir}
	  // File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir("hd_$o{name}"));
	my $a = bless {
		dir => $dir,
		ini => $o{ini} // "$dir/hyperdrive.ini",
		log => $o{log}
		  // (defined $o{name} ? "$PostgreSQL::Test::Utils::log_path/$o{name}_agent.log" : "$dir/agent.log"),
		port => $o{port} // PostgreSQL::Test::Cluster::get_free_port(),
		addr => $o{addr} // '127.0.0.1',
		settings => $o{settings} // '',
		header => $o{header} // 1,
	}, 'HdTest::Agent';
	mkdir $dir unless -d $dir;
	write_file("$dir/$_", $o{files}{$_}) for sort keys %{ $o{files} // {} };
	$a->write_settings;
	for my $c (@{ $o{configs} // [] })
	{
		my ($test, $name, @args) = @$c;
		hd_cli($a->{ini}, $test, 'create', $name, @args);
	}
	return $a if defined $o{start} && !$o{start};
	return $a->start(%o) // ($o{bail}
		? BAIL_OUT('the agent did not start: ' . slurp_from($a->{log}, 0, 4000)) : undef);
}

# Runs `hyperdrive agent -c INI` (under a wrapper, as HdTest::Agent::start) when it
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

# Whatever happened, no agent started here is left behind (not in forked
# children: only the process that started it).
our @AGENTS;
END
{
	for my $a (@AGENTS)
	{
		next unless $a->{owner} && $a->{owner} == $$ && !$a->{done};
		my $pid = $a->pid;
		kill 'KILL', $pid if $pid;
	}
}


package HdTest::Agent;

use Time::HiRes qw(time sleep);

# The settings file: [agent], listen_addr, listen_port, state_dir, then
# the settings given and $more.
sub write_settings
{
	my ($a, $more) = @_;
	my $head = !$a->{header} ? ''
	  : "[agent]\n" . (length $a->{addr} ? "listen_addr = $a->{addr}\n" : '')
	  . "listen_port = $a->{port}\nstate_dir = $a->{dir}/state\n";
	HdTest::write_file($a->{ini}, $head . $a->{settings} . ($more // ''));
	return;
}

# Starts the agent (again, after it stopped); its output appended to the log.
# Options: wrapper (a command that execs the agent, e.g. [ 'prlimit',
# '--nofile=256:256', '--' ]), pipe (through a pipe that cat appends to the
# log: a file size limit put on the agent then applies to its own files
# only), timer (an IPC::Run timer for the harness), wait (seconds to wait
# for it to accept connections, default 30), poll (seconds between tries,
# default 0.05). Returns $a once it does, or
# undef if it has not (or exited); then it is killed.
sub start
{
	my ($a, %o) = @_;
	my @cmd = (@{ $o{wrapper} // [] }, $HdTest::HD, 'agent', '-c', $a->{ini});
	my @timer = $o{timer} ? ($o{timer}) : ();
	delete $a->{done};
	$a->{owner} = $$;
	push @HdTest::AGENTS, $a;
	$a->{h} = $o{pipe}
	  ? IPC::Run::start(\@cmd, '<', \undef, '2>&1', '|', ['cat'], '>>', $a->{log}, @timer)
	  : IPC::Run::start(\@cmd, '<', \undef, '>>', $a->{log}, '2>&1', @timer);
	my $up = HdTest::wait_for(sub {
		return 1 if IO::Socket::INET->new(PeerAddr => length $a->{addr} ? $a->{addr} : '127.0.0.1',
			PeerPort => $a->{port}, Timeout => 1);
		return 0 if $a->alive;
		return -1;				# exited
	}, $o{wait} // 30, $o{poll});
	return $a if $up && $up > 0;
	$a->{h}->kill_kill;
	return undef;
}

# The agent's process id (a wrapper that execs keeps it).
sub pid { my ($a) = @_; return $a->{h}{KIDS}[0]{PID}; }

# Whether it still runs (reaps it if not; pumpable does not tell, with no
# pipe to it).
sub alive
{
	my ($a) = @_;
	return 0 if !$a->{h} || $a->{done};
	$a->{h}->reap_nb;
	return defined $a->{h}{KIDS}[0]{RESULT} ? 0 : 1;
}

# Whether it exits within $seconds (then it is reaped: status says how).
sub exited
{
	my ($a, $seconds) = @_;
	my $gone = HdTest::wait_for(sub { !$a->alive }, $seconds);
	$a->finish if $gone && !$a->{done};
	return $gone;
}

# Its wait status, once finished (0: it exited with status 0).
sub status { my ($a) = @_; return $a->{h}->full_result(0); }

# The harness's: signal, finish, result, kill_kill, pumpable.
sub signal { my ($a, @s) = @_; return $a->{h}->signal(@s); }
sub finish { my ($a) = @_; $a->{done} = 1; return $a->{h}->finish; }
sub result { my ($a, @i) = @_; return $a->{h}->result(@i); }
sub kill_kill { my ($a, @o) = @_; $a->{done} = 1; return $a->{h}->kill_kill(@o); }
sub pumpable { my ($a) = @_; return $a->{h}->pumpable; }

1;
