# The cache's store failing under the agent (docs/cache.md, "The store"):
#
#  - writes that fail (a full disk): the config is fenced, every statement
#    still gets the origin's answer, the fence is logged at most once a
#    minute however many statements come, and PURGE CACHE <config> lifts it
#    (once the writes work again) for that config only;
#  - a store that cannot be opened at start: the agent runs without a cache,
#    retries, and uses the store once the cause is removed, without a
#    restart.
#
# A full disk is simulated with a file size limit on the agent process
# (prlimit RLIMIT_FSIZE below the store's data pages; the agent ignores
# SIGXFSZ): LMDB's page writes then fail with EFBIG, where a full disk fails
# them with ENOSPC, and the agent takes the same path. The agent's log goes
# through a pipe, so the limit does not apply to it.
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Copy qw(move);
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use HdTest qw(slurp_from write_file);

CacheHarness::setup(tag => '075_cache_store', node => 'origin');
ok(start_agent(pipe => 1), 'the agent listens');
ok(stream_ready(),
	'the config\'s change stream connects');

sub log_size { return -s $log // 0; }

# RLIMIT_FSIZE of the agent (soft limit only: it can be raised again)
sub file_size_limit
{
	my ($value) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'prlimit', '--pid', agent_pid(), "--fsize=$value:" ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	return $? == 0 ? 1 : (diag("prlimit: $err"), 0);
}

my $read = 'SELECT name FROM items WHERE id = 1';
is(warm($read), 'apple', 'the read is cached');
is(warm('SELECT secret FROM public.privs', as('alice')), 's', 'so is one of config app_alice');

# ---------------------------------------------------------------------------
# Writes fail: the configs are fenced.
ok(file_size_limit(8192), 'the store\'s writes beyond its two meta pages fail from now on');
# WAL moves (a checkpoint record): the stream's new position must be written
$node->safe_psql('app', 'CHECKPOINT');
ok(wait_for(sub { sel($read); (cache_status()->{by}{'bypass:fenced'} // 0) > 0 }, 15),
	'the config is fenced: reads bypass the cache (bypass:fenced)');
is(sel($read), 'apple', 'and still get the origin\'s answer');

{
	my ($rc, $out, $err) = admin('PURGE CACHE app');
	like($err, qr/purge failed: .*(File too large|fenced)/,
		'PURGE CACHE app while the store cannot write fails and says why');
}

# many statements, few log lines
{
	my $n = 1000;
	my $file = "$tmp/reads.sql";
	write_file($file, "$read;\n" x $n);
	my ($f0, $size0) = (cache_status()->{by}{'bypass:fenced'} // 0, log_size());
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $PW;
	IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', $aport, '-U', 'app',
			'-d', 'app', '-f', $file ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	is(scalar(() = $out =~ /^apple$/mg), $n, "$n reads while fenced: each gets the origin's answer")
	  or diag($err);
	my $counted = (cache_status()->{by}{'bypass:fenced'} // 0) - $f0;
	ok($counted >= $n, "each is counted bypass:fenced ($counted)") or diag(explain(cache_status()->{by}));
	my $grown = log_size() - $size0;
	my $lines = () = slurp_from($log, $size0) =~ /fenced/g;
	ok($lines <= 3 && $grown < 20000,
		"the log does not grow with them ($lines lines about the fence, $grown bytes)")
	  or diag(slurp_from($log, $size0, 3000));
}

# ---------------------------------------------------------------------------
# The writes work again: the fence stays until the config is purged.
ok(file_size_limit('unlimited'), 'the store\'s writes work again');
{
	my $f0 = cache_status()->{by}{'bypass:fenced'} // 0;
	sel($read);
	ok((cache_status()->{by}{'bypass:fenced'} // 0) > $f0, 'the fence stays until a purge');
	my ($rc, $out, $err) = admin('PURGE CACHE app');
	is($rc . $err, '0', 'PURGE CACHE app succeeds') or diag($err);
	is(warm($read), 'apple', 'config app: the read is cached again (the fence is lifted)');
	my $a0 = cache_status('app_alice')->{by}{'bypass:fenced'} // 0;
	is(sel('SELECT secret FROM public.privs', as('alice')), 's', 'config app_alice: the origin\'s answer');
	ok((cache_status('app_alice')->{by}{'bypass:fenced'} // 0) > $a0,
		'config app_alice stays fenced: the purge lifted only config app\'s fence');
	($rc, $out, $err) = admin('PURGE CACHE');
	is($rc . $err, '0', 'PURGE CACHE (every config) succeeds') or diag($err);
	is(warm('SELECT secret FROM public.privs', as('alice')), 's', 'config app_alice is cached again');
}

# ---------------------------------------------------------------------------
# A store that cannot be opened at start.
$agent->signal('INT');
$agent->finish;
my $store = "$tmp/state/cache";
ok(move($store, "$store.moved"), 'the store is moved away');
write_file($store, "not a directory\n");
my $size0 = log_size();
ok(start_agent(pipe => 1), 'the agent starts with the store\'s directory unusable');
ok(wait_for(sub { slurp_from($log, $size0) =~ /cache.*cannot be used .*running without a cache/ }, 10),
	'it says it runs without a cache');
is(sel($read), 'apple', 'reads get the origin\'s answer');
is(cache_status()->{connected}, undef, 'no config is cached');
{
	my ($rc, $out, $err) = admin('PURGE CACHE app');
	like($err, qr/purge failed: the cache in .* is not open/, 'PURGE CACHE says the cache is not open');
}
# Two attempts at least (one every 5 s) before the cause goes: they must not
# log a line each. Nothing to wait for but the time itself.
sleep 6;
ok(unlink($store) && move("$store.moved", $store), 'the store is back');
ok(stream_ready(undef, 20),
	'the agent opens it without a restart: the config\'s stream connects');
my $since = '';
ok(wait_for(sub { $since = slurp_from($log, $size0); $since =~ /is open, after ([2-9]|\d\d+) failed attempts: caching starts/ }, 10),
	'it says so, after two or more failed attempts') or diag($since);
my $retry_lines = () = $since =~ /still cannot be used/g;
ok($retry_lines <= 1, "the attempts were not logged one by one ($retry_lines lines)");
is(warm($read), 'apple', 'reads are cached again');

$agent->signal('INT');
$agent->finish;
done_testing();
