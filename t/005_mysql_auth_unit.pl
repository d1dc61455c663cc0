# MySQL/MariaDB password authentication arithmetic (agent/auth/mysql_auth.c):
# mysql_native_password and caching_sha2_password, both sides, and the RSA
# of caching_sha2's full authentication, against MariaDB 10.11's PASSWORD()
# and logins it accepted, PyMySQL's implementation, wrong tokens and
# lengths, malformed hashes and keys.
#
# The tests are a C program, agent/tests/test_mysql_auth (make agent-unit),
# that prints TAP itself. No server is started.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_mysql_auth');
