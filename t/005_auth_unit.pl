# The agent's password authentication (agent/auth.c, scram.c, saslprep.c):
# SCRAM-SHA-256 both sides, MD5, plaintext, SASLprep, base64, against RFC
# 7677's example and secrets made by PostgreSQL 15, and malformed input.
#
# The tests are a C program, agent/tests/test_auth (make agent-unit), that
# prints TAP itself; this script runs it in its place, so that prove counts
# its tests one by one. No server is started.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use Test::More;

my $unit =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/tests/test_auth');
BAIL_OUT("$unit is missing: run 'make agent-unit' first") unless -x $unit;

# A command to run it under, e.g. HD_UNIT_WRAPPER='valgrind -q --error-exitcode=99'
my @wrapper = split ' ', ($ENV{HD_UNIT_WRAPPER} // '');

# exec: its TAP output and exit status become this script's.
exec { $wrapper[0] // $unit } @wrapper, $unit
  or BAIL_OUT("cannot run $unit: $!");
