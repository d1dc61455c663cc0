# The agent's wings depend on each other one way (scripts/check-wings): no
# include cycle between agent/*/, cache/ never includes pgwire/, pool/ never
# includes pgwire/, net/ includes only base/ and config/. First the checker
# itself, on small trees made here, must catch each kind of violation; then
# the real tree must be clean.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Test::More;

my $checker = dirname(__FILE__) . '/../scripts/check-wings';

# A tree of wings: { 'wing/file.h' => [ included 'wing/file.h', ... ] }.
sub tree
{
	my (%files) = @_;
	my $dir = tempdir(CLEANUP => 1) . '/agent';
	for my $f (sort keys %files)
	{
		make_path("$dir/" . dirname($f));
		open my $fh, '>', "$dir/$f" or die "$dir/$f: $!";
		print $fh qq{#include "$_"\n} for @{ $files{$f} };
		close $fh;
	}
	return $dir;
}

sub check
{
	my ($dir) = @_;
	my $out = `perl $checker $dir 2>&1`;
	return ($? >> 8, $out);
}

my ($rc, $out) = check(tree('base/a.h' => [], 'cache/c.c' => ['base/a.h'],
		'pgwire/p.c' => ['cache/c.h', 'base/a.h']));
is($rc, 0, 'a one-way tree passes') or diag($out);

($rc, $out) = check(tree('stream/s.c' => ['cache/c.h'], 'cache/c.c' => ['stream/s.h']));
is($rc, 1, 'a cycle fails');
like($out, qr/include cycle: (cache -> stream -> cache|stream -> cache -> stream)/,
	'and is named');

($rc, $out) = check(tree('cache/c.c' => ['pgwire/pooler.h'], 'pgwire/p.c' => []));
is($rc, 1, 'cache/ including pgwire/ fails');
like($out, qr{cache/ includes pgwire/ \(forbidden\): agent/cache/c\.c}, 'naming the file');

($rc, $out) = check(tree('pool/pool.c' => ['pgwire/pooler.h'], 'pgwire/p.c' => []));
is($rc, 1, 'pool/ including pgwire/ fails');

($rc, $out) = check(tree('mywire/my_client.c' => ['pgwire/proto.h'], 'pgwire/proto.h' => []));
isnt($rc, 0, 'mywire/ including pgwire/ is caught');
like($out, qr{mywire/ includes pgwire/ \(forbidden\)}, 'the two protocols\' wings are siblings');
($rc, $out) = check(tree('pgwire/p.c' => ['mywire/my_int.h'], 'mywire/my_int.h' => []));
like($out, qr{pgwire/ includes mywire/ \(forbidden\)}, 'either way');
($rc, $out) = check(tree('cache/c.c' => ['mywire/my_int.h'], 'mywire/my_int.h' => []));
like($out, qr{cache/ includes mywire/ \(forbidden\)}, 'and the cache core knows neither');
($rc, $out) = check(tree('net/tls.c' => ['pool/pool.h'], 'pool/pool.h' => []));
is($rc, 1, 'net/ including a wing above it fails');
like($out, qr{net/ includes pool/, which is above it}, 'and says so');

($rc, $out) = check(tree('net/tls.c' => ['base/log.h', 'config/settings.h'],
		'base/log.h' => [], 'config/settings.h' => ['base/log.h']));
is($rc, 0, 'net/ may include base/ and config/') or diag($out);

($rc, $out) = check(tree('base/log.h' => ['config/settings.h'], 'config/settings.h' => []));
is($rc, 1, 'base/ including another wing fails');

($rc, $out) = check(dirname(__FILE__) . '/../agent');
is($rc, 0, 'the agent\'s own wings: no cycle, no forbidden include') or diag($out);

done_testing();
