# Installing and checking: what `make install` lays out (the agent's binary,
# its manual pages, the systemd unit, the annotated sample settings file, and
# the extension's files), that the manual pages render without warnings, that
# the sample documents every setting with a valid default, and that
# `hyperdrive check` reports each missing prerequisite of an origin it is shown
# (the origin unreachable or refusing the password, wal_level, the extension,
# REPLICATION, the output plugin not allowed) with what to fix, and passes on
# a correct one, also beside a running agent; and that the agent tells
# systemd (Type=notify) when it is ready, reloading and stopping.
#
# One throwaway origin, whose settings change between the runs of check.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Find;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::UNIX;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return scalar <$fh>;
}

# Every file under $dir, relative to it (the extension's LLVM bitcode, which
# PGXS installs where the server was built with LLVM, left out).
sub files_under
{
	my ($dir) = @_;
	my @files;
	find(sub { push @files, substr($File::Find::name, length($dir) + 1) if -f $_ }, $dir);
	return [ sort grep { !m{/bitcode/} } @files ];
}

sub run_cmd
{
	my (@cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# ---------------------------------------------------------------------------
# make install, as a package builds it (prefix=/usr) and by default (/usr/local)

my $dest = tempdir('hd_install_XXXXXX', TMPDIR => 1, CLEANUP => 1);
my ($status, $out, $err) = run_cmd('make', '-C', $root, '-s', 'install', "DESTDIR=$dest", 'prefix=/usr');
is($status, 0, 'make install DESTDIR prefix=/usr') or diag($err);
my $pgshare = `pg_config --sharedir`;
my $pglib = `pg_config --pkglibdir`;
chomp($pgshare, $pglib);
my @extension = (
	"$pglib/hyperdrive.so",
	map { "$pgshare/extension/$_" } qw(hyperdrive--0.1--0.2.sql hyperdrive--0.2--0.3.sql
	  hyperdrive--0.2.sql hyperdrive.control));
is_deeply(files_under($dest), [ sort map { s{^/}{}r } (@extension,
			'/usr/bin/hyperdrive', '/usr/lib/systemd/system/hyperdrive.service',
			'/usr/share/doc/hyperdrive/hyperdrive.ini', '/usr/share/man/man1/hyperdrive.1',
			'/usr/share/man/man5/hyperdrive.ini.5') ],
	'prefix=/usr: exactly the expected files');
ok(-x "$dest/usr/bin/hyperdrive", 'the binary is executable');
is(sprintf('%o', (stat "$dest/usr/share/doc/hyperdrive/hyperdrive.ini")[2] & 07777), '644',
	'the sample is mode 644');

my $unit = slurp("$dest/usr/lib/systemd/system/hyperdrive.service");
like($unit, qr{^ExecStart=/usr/bin/hyperdrive agent -c /etc/hyperdrive/hyperdrive\.ini$}m,
	'unit: ExecStart runs the installed binary on /etc/hyperdrive/hyperdrive.ini');
like($unit, qr{^ExecReload=/bin/kill -HUP \$MAINPID$}m, 'unit: reload sends SIGHUP');
like($unit, qr{^User=hyperdrive$}m, 'unit: runs as user hyperdrive');
like($unit, qr{^Type=notify$}m, 'unit: Type=notify');
like($unit, qr{^LimitNOFILE=(\d+)$}m, 'unit: sets LimitNOFILE');
my ($nofile) = $unit =~ /^LimitNOFILE=(\d+)$/m;
# the agent's need at the default max_client_conn (docs/agent.md, "Open files")
cmp_ok($nofile, '>=', 1000 + 20 + 64 + 3, 'unit: LimitNOFILE fits the default max_client_conn');
unlike($unit, qr/@\w+@/, 'unit: every placeholder is filled');
like(slurp("$dest/usr/share/doc/hyperdrive/hyperdrive.ini"), qr{reads /etc/hyperdrive/hyperdrive\.ini},
	'sample: names the settings file of the service');

SKIP:
{
	my $analyze = `sh -c 'command -v systemd-analyze'`;
	skip 'no systemd-analyze', 1 unless $analyze;
	# the unit as installed, its binary where DESTDIR put it
	my $copy = "$dest/verify.service";
	HdTest::write_file($copy, $unit =~ s{/usr/bin/hyperdrive}{$dest/usr/bin/hyperdrive}r);
	($status, $out, $err) = run_cmd('systemd-analyze', 'verify', '--man=no', $copy);
	my @ours = grep { /verify\.service|hyperdrive/ } split /\n/, "$out$err";
	is_deeply(\@ours, [], 'systemd-analyze verify: nothing to say about the unit')
	  or diag("$out$err");
}

my $local = tempdir('hd_install_XXXXXX', TMPDIR => 1, CLEANUP => 1);
($status, $out, $err) = run_cmd('make', '-C', $root, '-s', 'install', "DESTDIR=$local");
is($status, 0, 'make install DESTDIR (default prefix)') or diag($err);
is_deeply(files_under($local), [ sort map { s{^/}{}r } (@extension,
			'/usr/local/bin/hyperdrive', '/usr/local/lib/systemd/system/hyperdrive.service',
			'/usr/local/share/doc/hyperdrive/hyperdrive.ini',
			'/usr/local/share/man/man1/hyperdrive.1',
			'/usr/local/share/man/man5/hyperdrive.ini.5') ],
	'default prefix: the agent under /usr/local, the extension where the server has it');
like(slurp("$local/usr/local/lib/systemd/system/hyperdrive.service"),
	qr{^ExecStart=/usr/local/bin/hyperdrive agent -c /usr/local/etc/hyperdrive/hyperdrive\.ini$}m,
	'default prefix: the unit names /usr/local paths');

# ---------------------------------------------------------------------------
# The manual pages and the sample settings file

for my $page ('man1/hyperdrive.1', 'man5/hyperdrive.ini.5')
{
	my $path = "$dest/usr/share/man/$page";
	my ($text, $warnings) = ('', '');
	local $ENV{MANWIDTH} = 80;
	IPC::Run::run([ 'man', '--warnings', '-l', $path ], '<', \undef, '>', \$text, '2>', \$warnings);
	is($?, 0, "man -l $page");
	is($warnings, '', "man --warnings: none for $page");
	like($text, qr/^NAME\n\s+hyperdrive/m, "$page renders its NAME section");
}

# every setting the agent knows (settings.c's table), documented in the
# sample and in hyperdrive.ini(5)
my @settings = slurp("$root/agent/config/settings.c") =~ /^\t\{"(\w+)", K_/mg;
cmp_ok(scalar @settings, '>=', 20, 'the settings table is read');
my $sample = slurp("$dest/usr/share/doc/hyperdrive/hyperdrive.ini");
my $man5 = slurp("$root/docs/man/hyperdrive.ini.5.scd");
is_deeply([ grep { $sample !~ /^;?$_ = /m } @settings ], [], 'the sample has every setting');
is_deeply([ grep { $man5 !~ /\*$_\*/ } @settings ], [], 'hyperdrive.ini(5) has every setting');

my $work = tempdir('hd_check_XXXXXX', TMPDIR => 1, CLEANUP => 1);
$sample =~ s{^state_dir = .*$}{state_dir = $work/state}m;
HdTest::write_file("$work/sample.ini", $sample);
# every default shown, uncommented, is a value the agent takes
(my $uncommented = $sample) =~ s/^;(\w+ = )/$1/mg;
$uncommented =~ s/^(tls_\w+|auth_file|admin_users) = .*\n//mg;	# examples of files
HdTest::write_file("$work/defaults.ini", $uncommented);
for my $ini ('sample.ini', 'defaults.ini')
{
	($status, $out, $err) = run_cmd($HD, 'check', '-c', "$work/$ini");
	is($status, 0, "check: the $ini loads") or diag($out . $err);
}

my ($version) = slurp("$root/agent/base/version.h") =~ /#define HYPERDRIVE_VERSION "([^"]+)"/;
($status, $out) = run_cmd($HD, '--version');
like($out, qr/^hyperdrive \Q$version\E /, '--version: the version');

($status, $out) = run_cmd($HD, 'check', '-c', "$work/missing.ini");
is($status, 1, 'check: a missing settings file fails');
like($out, qr/^FAIL: settings: .*missing\.ini.*; fix: name the agent's settings file/m,
	'check: ... and says how to name it');

# ---------------------------------------------------------------------------
# hyperdrive check against an origin missing each prerequisite in turn

my $plugin_list = HdTest::needs_plugin_list();
my $node = start_origin('origin', logical => 1,
	conf => "wal_level = replica\n"
	  . ($plugin_list ? "output_plugin_libraries = 'pgoutput'\n" : ''));
my $PW = 'check-Secret-7';
$node->safe_psql('postgres', "CREATE ROLE app LOGIN PASSWORD '$PW'");
$node->safe_psql('postgres', 'CREATE DATABASE app OWNER app');
my $port = $node->port;
my $nobody = PostgreSQL::Test::Cluster::get_free_port();

my $agent = hd_agent(name => 'check', start => 0,
	configs => [
		[ 'create app', 'app', "--connection-string=postgresql://app:$PW\@127.0.0.1:$port/app" ],
		[ 'create down', 'down', "--connection-string=postgresql://app:$PW\@127.0.0.1:$nobody/app" ],
		[ 'create wrongpw', 'wrongpw', "--connection-string=postgresql://app:not-$PW\@127.0.0.1:$port/app" ],
	]);

# Runs check; returns (exit status, its lines, the FAIL lines).
sub check
{
	my (@args) = @_;
	my ($st, $o, $e) = run_cmd($HD, 'check', '-c', $agent->{ini}, @args);
	note("hyperdrive check @args:\n$o");
	unlike("$o$e", qr/\Q$PW\E/, 'check: no password in the output');
	is($e, '', 'check: nothing on stderr');
	my @fails = grep { /^FAIL: / } split /\n/, $o;
	like($_, qr/; fix: \S/, "check: a fix for: " . substr($_, 0, 60)) for @fails;
	return ($st, $o, \@fails);
}

my ($st, $o, $fails) = check();
is($st, 1, 'bare origin: check fails');
like($o, qr/^ok: settings file /m, 'bare origin: the settings load');
like($o, qr/^ok: 3 config\(s\) load$/m, 'bare origin: the configs load');
like($o, qr/^ok: app: connects to 127\.0\.0\.1:$port database app as app /m, 'bare origin: connects');
my @expected = (
	qr/^FAIL: app: wal_level is replica, not logical; fix: set wal_level = logical .*restart/,
	qr/^FAIL: app: the extension hyperdrive is not created in database app; fix: CREATE EXTENSION hyperdrive; in database app/,
	qr/^FAIL: app: role app has no REPLICATION attribute; fix: ALTER ROLE app REPLICATION;/,
	qr/^FAIL: down: cannot connect to 127\.0\.0\.1:$nobody database app as app: .*; fix: make the origin reachable/,
	qr/^FAIL: wrongpw: cannot connect to 127\.0\.0\.1:$port database app as app: .*password authentication failed.*; fix: .*hyperdrive update wrongpw/,
);
is(scalar @$fails, scalar @expected, 'bare origin: five problems') or diag($o);
for my $i (0 .. $#expected)
{
	like($fails->[$i] // '', $expected[$i], "bare origin: problem " . ($i + 1));
}
like($o, qr/^skip: app: output plugin hyperdrive \(needs wal_level = logical and REPLICATION first\)$/m,
	'bare origin: the plugin is not tried yet');
like($o, qr/^5 problems to fix$/m, 'bare origin: counted');

# logical decoding on, the extension created, REPLICATION granted; the plugin
# still not allowed where the server has output_plugin_libraries
$node->safe_psql('postgres', 'ALTER SYSTEM SET wal_level = logical');
$node->restart;
$node->safe_psql('app', 'CREATE EXTENSION hyperdrive');
$node->safe_psql('postgres', 'ALTER ROLE app REPLICATION');
SKIP:
{
	skip 'this server has no output_plugin_libraries', 6 unless $plugin_list;
	($st, $o, $fails) = check('app');
	is($st, 1, 'plugin not allowed: check fails');
	unlike($o, qr/(down|wrongpw):/, 'check app: only that config');
	is(scalar @$fails, 1, 'plugin not allowed: one problem') or diag($o);
	like($fails->[0] // '',
		qr/^FAIL: app: output plugin hyperdrive: cannot create a logical slot with it: .*may not be used as an output plugin.*; fix: add hyperdrive to output_plugin_libraries/,
		'plugin not allowed: says so, and what to add');
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, hyperdrive');
	$node->reload;
	ok(wait_for(sub {
				$node->safe_psql('postgres', 'SHOW output_plugin_libraries') =~ /hyperdrive/ }),
		'the origin has reloaded');
}

($st, $o, $fails) = check('app');
is($st, 0, 'correct origin: check passes') or diag($o);
is_deeply($fails, [], 'correct origin: no problem');
like($o, qr/^ok: app: wal_level = logical$/m, 'correct origin: wal_level');
like($o, qr/^ok: app: extension hyperdrive \d+\.\d+$/m, 'correct origin: the extension');
like($o, qr/^ok: app: role app may replicate$/m, 'correct origin: REPLICATION');
like($o, qr/^ok: app: USAGE on schema hyperdrive$/m, 'correct origin: USAGE on the schema');
like($o, qr/^ok: app: output plugin hyperdrive: a temporary logical slot was created/m,
	'correct origin: the plugin is usable');
like($o, qr/^all checks passed$/m, 'correct origin: all passed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'), '0',
	'check leaves no slot behind');

# ---------------------------------------------------------------------------
# The unit's Type=notify: what the agent tells systemd on $NOTIFY_SOCKET

my $notify_path = "$work/notify";
my $notify = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $notify_path)
  or die "$notify_path: $!";
my $select = IO::Select->new($notify);

# the next message systemd would get, or '' after 10 s
sub notified
{
	return '' unless $select->can_read(10);
	my $msg = '';
	$notify->recv($msg, 4096);
	return $msg;
}

hd_cli($agent->{ini}, 'delete down', 'delete', 'down');
hd_cli($agent->{ini}, 'delete wrongpw', 'delete', 'wrongpw');
{
	local $ENV{NOTIFY_SOCKET} = $notify_path;
	$agent->start or BAIL_OUT('the agent did not start: ' . slurp_from($agent->{log}, 0, 4000));
}
is(notified(), "READY=1\nSTATUS=listening on 127.0.0.1:$agent->{port} with 1 config(s)",
	'notify: READY=1 once it listens, with a status line');

# check beside a running agent: its slot and WAL sender are not asked for
# again, and with none left for a test slot, the plugin check is skipped
my $stream_up = sub {
	$node->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hyperdrive_app' AND active")
	  eq '1';
};
ok(wait_for($stream_up, 30), "the agent's stream is connected");
($st, $o, $fails) = check();
is($st, 0, 'beside the agent: check passes') or diag($o);
like($o, qr/^ok: app: the agent's replication slot exists$/m, "beside the agent: its slot is seen");
like($o, qr/^ok: app: the agent's change stream is connected$/m, "beside the agent: its stream is seen");
like($o, qr/^ok: app: output plugin hyperdrive: a temporary logical slot was created/m,
	'beside the agent: the plugin is tried on a slot of its own');
$node->append_conf('postgresql.conf', "max_replication_slots = 1\nmax_wal_senders = 1\n");
$node->restart;
ok(wait_for($stream_up, 30), "the agent's stream is connected again");
($st, $o, $fails) = check();
is($st, 0, 'beside the agent, no slot left: check passes') or diag($o);
like($o, qr/^skip: app: output plugin hyperdrive \(no replication slot or WAL sender free for a test slot\)$/m,
	'beside the agent, no slot left: the plugin check is skipped');

$agent->signal('HUP');
is(notified(), 'RELOADING=1', 'notify: RELOADING=1 on SIGHUP');
is(notified(), 'READY=1', 'notify: READY=1 once reloaded');
$agent->signal('TERM');
is(notified(), 'STOPPING=1', 'notify: STOPPING=1 on SIGTERM');
$agent->finish;
is($agent->result(0), 0, 'the agent exits 0 after SIGTERM');

$node->stop;
done_testing();
