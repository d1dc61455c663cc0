# The words of precise invalidation in PostgreSQL's text (agent/pgwire/
# cache_params.c): analyze_query()'s bindings and parameter types read
# strictly, and the statement a cache fill runs to hash the client's
# parameters (its Parse, its Bind of the client's bytes, its row). The tests
# are a C program, agent/tests/test_cache_params (make agent-unit), that
# prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_cache_params');
