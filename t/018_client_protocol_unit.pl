# The client-protocol driver's contract (agent/net/client_protocol.h),
# checked through PostgreSQL's table (agent/pgwire/pg_client_protocol.c):
# framing of a partial message, of one and two in a buffer, of an invalid
# header and a huge declared length; classification of transaction control,
# session state, queries and the rest; ErrorResponse and ReadyForQuery
# decoded back field by field; idle sessions. No server: the tests are a C
# program, agent/tests/test_client_protocol (make agent-unit), that prints
# TAP itself, written so that a MySQL/MariaDB driver can be run through the
# same checks.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_client_protocol');
