# The agent's password authentication (agent/auth/auth.c, scram.c, saslprep.c):
# SCRAM-SHA-256 both sides, MD5, plaintext, SASLprep, base64, against RFC
# 7677's example and secrets made by PostgreSQL 15, and malformed input.
#
# The tests are a C program, agent/tests/test_auth (make agent-unit), that
# prints TAP itself; this script runs it in its place, so that prove counts
# its tests one by one. No server is started.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_auth');
