# The agent's decoder of the compact change-stream format
# (agent/stream/stream_record.c) on records the extension wrote: each fixture in
# agent/tests/data/ (captured by scripts/capture-stream-fixtures) decodes to the
# fields its transaction made, renders as the extension's own text, and every
# truncation and one-bit flip of it is refused with an offset or decoded, never
# read out of range. The tests are a C program, agent/tests/test_stream_record
# (make agent-unit), that prints TAP itself; no server is started.
use strict;
use warnings;

use File::Basename qw(dirname);
use lib dirname(__FILE__);
use UnitTest;

UnitTest::exec_unit('test_stream_record');
