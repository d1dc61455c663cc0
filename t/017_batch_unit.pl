# A client's extended-protocol batch as one state machine (agent/pgwire/batch.c):
# the sequences drivers send (pgx-style Parse/Bind/Describe/Execute/Sync, a
# Parse-only batch answered by the agent, a batch the cache serves or passes
# on, a shape check mid-batch, an error then Sync) and the transitions it
# refuses. The tests are a C program, agent/tests/test_batch (make
# agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_batch');
