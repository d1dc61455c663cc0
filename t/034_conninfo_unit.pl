# Origin connection strings into configs (agent/config/conninfo.c and
# mysql_uri.c): mysql:// and mariadb:// URIs (percent-decoding, IPv6, the
# ssl-mode/ssl-ca options, what is refused and that no message shows the
# password), a PostgreSQL string after a MySQL one, the checks that tie
# fields to the protocol (agent/config/configs.c), and the protocol and
# allow_load_local keys through a .conf file. The tests are a C program,
# agent/tests/test_conninfo (make agent-unit), that prints TAP itself.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_conninfo');
