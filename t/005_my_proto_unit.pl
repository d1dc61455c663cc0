# The MySQL protocol's bytes (agent/mywire/my_proto.c): packet framing with
# 16 MB splits, length-encoded integers at their edges, the greeting and the
# handshake response (real clients' ones, every optional part missing or
# cut), OK/ERR/EOF, and the reply tracker over MariaDB 10.11's own replies
# (result sets with and without CLIENT_DEPRECATE_EOF, multi-results, CALL,
# prepares, cursors, LOCAL INFILE), malformed and truncated input.
#
# The tests are a C program, agent/tests/test_my_proto (make agent-unit),
# that prints TAP itself. No server is started.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_my_proto');
