# The cache's storage layer (agent/cache/store.c): LMDB entries, the relation
# index, invalidation by deps (values included) with the applied position,
# LRU eviction, crash safety, format versions. The tests are a C program,
# agent/tests/test_store (make agent-unit), that prints TAP itself; it gets a
# temporary directory for its stores.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $unit =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/tests/test_store');
BAIL_OUT("$unit is missing: run 'make agent-unit' first") unless -x $unit;

my $dir = tempdir('hd_cache_XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @wrapper = split ' ', ($ENV{HD_UNIT_WRAPPER} // '');

# Not exec: the temporary directory is removed when this script ends. The
# program's TAP goes straight to our stdout; its exit status becomes ours.
system { $wrapper[0] // $unit } @wrapper, $unit, "$dir/stores";
my $status = $?;
if ($status & 127)
{
	print "Bail out! $unit died of signal " . ($status & 127) . "\n";
	exit 255;
}
exit($status >> 8);
