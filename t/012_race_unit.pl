# The cache's race rule (agent/cache/race.c): snapshot visibility, retained
# changes against a fill's relations, the bound for waiters, pruning once
# every fill in flight sees a change, folding. The tests are a C program,
# agent/tests/test_race (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_race');
