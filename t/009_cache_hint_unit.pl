# Per-statement cache hints in SQL comments (agent/cache/cache_hint.c): where
# they are read, what they say, what only looks like one. The tests are a
# C program,
# agent/tests/test_cache_hint (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_cache_hint');
