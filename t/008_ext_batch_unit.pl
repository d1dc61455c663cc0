# The extended-protocol batches the cache may answer as a whole
# (agent/ext_batch.c), and malformed, partial or oversized input. The
# tests are a C program,
# agent/tests/test_ext_batch (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use Test::More;

my $unit =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/tests/test_ext_batch');
BAIL_OUT("$unit is missing: run 'make agent-unit' first") unless -x $unit;

my @wrapper = split ' ', ($ENV{HD_UNIT_WRAPPER} // '');
exec { $wrapper[0] // $unit } @wrapper, $unit
  or BAIL_OUT("cannot run $unit: $!");
