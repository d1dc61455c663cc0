# The cache core (agent/cache/cache.c) through its two seams, with a fake
# origin driver (cache/origin.h: change source, lead, refresh, read-your-
# writes) and fake sessions, over a real LMDB store: analyses and fills led
# with hd_cache_lead() and coalesced, hits, changes that drop entries, the
# race rule, read-your-writes, freshness, stale-while-revalidate. The tests
# are a C program, agent/tests/test_cache_core (make agent-unit), that
# prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_cache_core');
