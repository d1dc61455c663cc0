# The protocol-neutral pool (agent/pool/pool.c) without servers: fake
# connections and waiters through the pool's two tables (pool/pool.h):
# first come first served, origin_connection_limit across roles, a failed
# attempt answered to every waiter, the retry timer, PAUSE/RESUME, logins,
# the janitor's timeouts, releases and resets. The tests are a C program,
# agent/tests/test_pool (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_pool');
