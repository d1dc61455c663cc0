# Per-statement cache hints in SQL comments (agent/cache_hint.c): where
# they are read, what they say, what only looks like one. The tests are a
# C program,
# agent/tests/test_cache_hint (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use Test::More;

my $unit =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/tests/test_cache_hint');
BAIL_OUT("$unit is missing: run 'make agent-unit' first") unless -x $unit;

my @wrapper = split ' ', ($ENV{HD_UNIT_WRAPPER} // '');
exec { $wrapper[0] // $unit } @wrapper, $unit
  or BAIL_OUT("cannot run $unit: $!");
