# Request coalescing in the cache core (agent/cache/flight.c), with fake
# sessions: leaders and waiters, what each gets when a flight ends, the
# reasons counted, sessions that go, timeouts, waiters that re-enter. The
# tests are a C program, agent/tests/test_flight (make agent-unit), that
# prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_flight');
