# The connection's transport (agent/net/conn.c): its operations table and the
# plain operations over a socketpair, what read and write report (bytes,
# would block, end of stream, errors with their text), close and free. The
# tests are a C program, agent/tests/test_conn (make agent-unit), that prints
# TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_conn');
