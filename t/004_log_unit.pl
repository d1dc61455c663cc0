# The agent's log (agent/base/log.c): every line is one line, with what clients
# send escaped; long messages are cut; repeated lines of one kind are
# suppressed past a burst and counted. The tests are a C program,
# agent/tests/test_log (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_log');
