# The data structures of prepared statements (agent/pgwire/stmt.c): the registry
# and its retirement after schema changes, client names, statement shapes,
# the unnamed statement, the queue of owed replies and the rule that matches
# replies to it (a cache fill's replies among them). The tests are a C
# program, agent/tests/test_stmt (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_stmt');
