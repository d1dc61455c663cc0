#!/bin/sh
# Print the server settings for the throwaway instances the test suites start:
# tests/regress.conf, plus the output-plugin allow-list where the server has one.
#
# PostgreSQL 15.19 (and the matching minor releases of other branches) added
# output_plugin_libraries, which lists the output plugins REPLICATION users may
# name; "hyperdrive" must be on it. Older servers refuse the unknown setting,
# so it is only added when the server reports it.
#
# usage: make-temp-config.sh BINDIR
set -eu
bindir=$1
here=$(dirname "$0")
cat "$here/regress.conf"
if "$bindir/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries\b' >/dev/null; then
	echo "output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'"
fi
