# Other MySQL users' password-hash lookup, its pure parts
# (agent/mywire/my_lookup.c): the query that reads a user's account rows
# (the name as a hexadecimal literal whatever its bytes, per table: MariaDB's
# mysql.global_priv and mysql.user view, MySQL's mysql.user), the rule that
# decides from the rows (one login on every host or refused; roles, locks,
# expired passwords, several methods, plugins a proxy cannot check), and the
# log line naming the GRANT a config's user lacks.
#
# The tests are a C program, agent/tests/test_my_lookup (make agent-unit),
# that prints TAP itself. No server is started (t/104_mysql_lookup.pl runs
# the lookup against MariaDB).
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_my_lookup');
