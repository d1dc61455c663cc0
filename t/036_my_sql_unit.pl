# What a MySQL statement's text does to the session (agent/mywire/my_sql.c):
# carried SETs, USE, reads of the previous statement's diagnostics, and the
# pins, through comments, quotes and multi-statement texts. The tests are a
# C program, agent/tests/test_my_sql (make agent-unit), that prints TAP.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_my_sql');
