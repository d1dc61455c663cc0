# The agent's session-state rules (agent/pgwire/session.c): which statements are
# carried between origin connections, which pin a client to one, and how
# startup parameters become settings. The tests are a C program,
# agent/tests/test_session (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_session');
