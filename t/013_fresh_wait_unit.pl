# Strict consistency's waiting hits in the cache core (agent/cache/
# fresh_wait.c), with fake waiters: the order of arrival, which waiters a
# freshness answers, which waited too long, waiters that go while taken
# out. The tests are a C program, agent/tests/test_fresh_wait (make
# agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_fresh_wait');
