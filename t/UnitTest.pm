# UnitTest: run one of the agent's C unit-test programs (agent/tests/,
# built by make agent-unit) as this TAP script: its TAP output and exit
# status become the script's.
#
#   use lib dirname(__FILE__);
#   use UnitTest;
#   UnitTest::exec_unit('test_session');
#
# HD_UNIT_WRAPPER is a command to run it under, e.g.
# HD_UNIT_WRAPPER='valgrind -q --error-exitcode=99'.
package UnitTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use Test::More;

sub exec_unit
{
	my ($name, @args) = @_;
	my $unit = File::Spec->rel2abs(dirname(__FILE__) . "/../agent/tests/$name");
	BAIL_OUT("$unit is missing: run 'make agent-unit' first") unless -x $unit;
	my @wrapper = split ' ', ($ENV{HD_UNIT_WRAPPER} // '');
	exec { $wrapper[0] // $unit } @wrapper, $unit, @args
	  or BAIL_OUT("cannot run $unit: $!");
}

1;
