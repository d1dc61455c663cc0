# The extended-protocol batches the cache may answer as a whole
# (agent/pgwire/ext_batch.c), and malformed, partial or oversized input. The
# tests are a C program,
# agent/tests/test_ext_batch (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_ext_batch');
