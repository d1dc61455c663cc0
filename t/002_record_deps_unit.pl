# A change record's dependencies (agent/stream/record_deps.c): which
# relations a record of the stream names by the values of their precision
# column, and every case that falls back to every row (incomplete values,
# another column, TRUNCATE, DDL, a version 1 record). The tests are a C
# program, agent/tests/test_record_deps (make agent-unit), that prints TAP.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_record_deps');
