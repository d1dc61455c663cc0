# The compact format carries exactly what the text format says.
#
# One slot is read three ways over the same workload: as text from SQL, as
# compact from SQL, and as text over the replication protocol
# (pg_recvlogical). The agent's decoder (agent/stream/stream_record.c, written from
# docs/stream.md alone) renders each compact record as text; it must be
# byte-identical to the server's text, record by record. That checks the
# encoder, the decoder and the spec against each other. Malformed input to the
# decoder must be refused cleanly.
#
# Needs agent/hyperdrive (make agent) and the extension installed in the
# server that PATH's initdb/postgres belong to. Run with make installcheck
# (TAP_TESTS) or prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $agent =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/hyperdrive');
BAIL_OUT("$agent is missing: run 'make agent' first") unless -x $agent;

# A command to run the decoder under, e.g.
# HD_DECODE_WRAPPER='valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all'
my @wrapper = split ' ', ($ENV{HD_DECODE_WRAPPER} // '');

# Runs decode-stream on $input; returns (exit status, stdout, stderr, signal).
sub decode_stream
{
	my ($input, @switches) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ @wrapper, $agent, 'decode-stream', @switches ],
		'<', \$input, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err, $? & 127);
}

# ---------------------------------------------------------------------------
# The origin.
my $node = PostgreSQL::Test::Cluster->new('origin');
$node->init(
	allows_streaming => 'logical',
	extra => [ '--encoding=UTF8', '--locale=C' ]);
# autovacuum would add its own transactions. The odd TimeZone (+12:45)
# checks that commit_time is printed in UTC whatever the session's.
$node->append_conf('postgresql.conf',
	"autovacuum = off\ntimezone = 'Pacific/Chatham'\n");
{
	# Servers with the output-plugin allow-list (15.19+) refuse the slot
	# unless hyperdrive is on it; older ones refuse the unknown setting.
	my ($config, $ignored) = ('', '');
	IPC::Run::run([ 'postgres', '--describe-config' ],
		'>', \$config, '2>', \$ignored);
	$node->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'\n")
	  if $config =~ /^output_plugin_libraries\b/m;
}
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION hyperdrive');
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('hd', 'hyperdrive')");

# ---------------------------------------------------------------------------
# The workload: every statement outside BEGIN/COMMIT is its own transaction.
$node->safe_psql('postgres', <<'SQL');
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
CREATE TABLE "Odd ""Name""" (k text, n int, note text, PRIMARY KEY (k, n));
CREATE TABLE kw ("order" int, "user" text, name text, "Mixed" int,
                 PRIMARY KEY ("order", "user"));
CREATE TABLE nokey (a int, b text);
CREATE TABLE meas (id int, ts date, v int, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
CREATE TABLE meas_2024 PARTITION OF meas
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (id);
CREATE TABLE meas_2024_a PARTITION OF meas_2024 FOR VALUES IN (1, 2, 3);
CREATE TABLE meas_2024_b PARTITION OF meas_2024 DEFAULT;
CREATE TABLE meas_2025 PARTITION OF meas FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE bulk (id int PRIMARY KEY);
CREATE TABLE big (k text PRIMARY KEY);
-- version 2: watched columns (the parent's column for the partitions)
SELECT hyperdrive.watch_column('hd', 'items', 1::int2);
SELECT hyperdrive.watch_column('hd', 'items', 2::int2);
SELECT hyperdrive.watch_column('hd', 'meas', 3::int2);
SELECT hyperdrive.watch_column('hd', 'bulk', 1::int2);
SELECT hyperdrive.watch_column('hd', 'big', 1::int2);

-- keys that need quoting as literals; NULLs in non-key columns
INSERT INTO items VALUES (1, 'it''s', 1.5), (2, NULL, NULL), (3, E'back\\slash', 2);
UPDATE items SET price = 9 WHERE id = 1;
UPDATE items SET id = 10 WHERE id = 2;
DELETE FROM items WHERE id = 3;
INSERT INTO "Odd ""Name""" VALUES ('o''brien', 1, NULL), (E'C:\\dir\\file', 2, 'x'),
    (E'two\nlines', 3, NULL);
INSERT INTO "Odd ""Name""" VALUES ('', 0, NULL), ('ünï "q"', -5, 'y');
UPDATE "Odd ""Name""" SET k = E'it''s \\ both' WHERE n = 1;
DELETE FROM "Odd ""Name""" WHERE n = 0;
-- column names that are keywords
INSERT INTO kw VALUES (1, 'select', 'n', 1), (2, E'\\', NULL, NULL);
-- no usable key, then a keyed table, in one transaction
BEGIN;
INSERT INTO nokey VALUES (1, 'a');
INSERT INTO items VALUES (4, 'four', 4);
DELETE FROM nokey;
COMMIT;
-- partitions: two levels of ancestors
INSERT INTO meas VALUES (1, '2024-02-02', 1), (7, '2024-03-03', 2), (1, '2025-05-05', 3);
UPDATE meas SET v = 5 WHERE id = 7;
TRUNCATE meas;
-- more keys than key-cap 3
INSERT INTO bulk SELECT generate_series(1, 5);
-- a key longer than 1024 bytes
INSERT INTO big VALUES (repeat('x', 1500));
-- DDL, GRANT, a role change
ALTER TABLE items ADD COLUMN extra int;
CREATE FUNCTION add_one(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';
GRANT SELECT ON items TO PUBLIC;
CREATE ROLE reader;
BEGIN;
UPDATE items SET name = 'renamed' WHERE id = 1;
ALTER TABLE kw ADD COLUMN z int;
GRANT SELECT ON kw TO reader;
COMMIT;
-- a heartbeat: committed, but nothing the stream reports
BEGIN;
CREATE TEMP TABLE scratch (a int);
INSERT INTO scratch VALUES (1);
COMMIT;
-- rolled back: nothing
BEGIN;
INSERT INTO items VALUES (99, 'never', 0);
ROLLBACK;
BEGIN;
INSERT INTO items VALUES (5, 'kept', 5);
SAVEPOINT s;
INSERT INTO items VALUES (98, 'gone', 0);
ROLLBACK TO s;
COMMIT;
SQL
my $endpos = $node->lsn('insert');

# ---------------------------------------------------------------------------
# Read the slot (without consuming it) as text and as compact.
my $options = "'key-cap', '3', 'value-cap', '3', 'heartbeat', 'on'";

# Text records, one per row; hex keeps embedded newlines intact through psql.
sub peek_text
{
	my ($text_options) = @_;
	my $hex = $node->safe_psql('postgres',
		"SELECT encode(textsend(data), 'hex') FROM "
		  . "pg_logical_slot_peek_changes('hd', NULL, NULL, $options, $text_options)"
	);
	return map { pack('H*', $_) } split /\n/, $hex;
}

my @text = peek_text("'include-timestamp', '0'");
my @compact = split /\n/,
  $node->safe_psql('postgres',
	    "SELECT data FROM pg_logical_slot_peek_binary_changes('hd', NULL, NULL, "
	  . "'format', 'compact', $options, 'include-timestamp', '0')");

# The workload must have exercised what it means to.
my $all_text = join("\n", @text);
cmp_ok(scalar(@text), '>=', 25, 'the workload produced records');
for my $feature (
	'rows all (key-cap)', 'rows all (key-size)',
	'rows all (no-identity)', 'rows all (truncate)',
	'rows all (ddl)', 'invalidate all (GRANT)',
	'invalidate all (role change)', ' heartbeat',
	"E'C:\\\\dir\\\\file'", 'public."Odd ""Name"""',
	'key ("order","user")', ' ancestors public.meas_2024 oid ',
	"'o''brien'", 'ddl CREATE FUNCTION function public.add_one(integer)',
	' values ', 'all (no-old-value)', 'all (value-cap)')
{
	ok(index($all_text, $feature) >= 0, "the text shows $feature");
}
unlike($all_text, qr/never|gone/, 'rolled-back changes are not reported');

is(scalar(@compact), scalar(@text), 'as many compact records as text ones');
like($_, qr/^\\x4802/, 'compact row is a version 2 record') for $compact[0];

# ---------------------------------------------------------------------------
# The decoder's rendering of each compact record equals the server's text.
for my $i (0 .. $#compact)
{
	my ($rc, $out, $err) = decode_stream("$compact[$i]\n");
	is($rc, 0, "record $i decodes") or diag($err);
	is($out, ($text[$i] // '') . "\n", "record $i renders as the server's text");
}

my $stream = join('', map { "$_\n" } @compact);
my $expected = join('', map { "$_\n" } @text);
{
	my ($rc, $out, $err) = decode_stream($stream);
	is($rc, 0, 'the whole stream decodes') or diag($err);
	is($out, $expected, 'the whole stream renders as the server\'s text');
}

# The switches match the plugin's include-* options.
{
	my @bare = peek_text(
		"'include-timestamp', '0', 'include-xids', '0', 'include-lsn', '0', "
		  . "'include-oids', '0'");
	my ($rc, $out, $err) =
	  decode_stream($stream, '--no-xids', '--no-lsn', '--no-oids');
	is($rc, 0, 'decodes with --no-xids --no-lsn --no-oids') or diag($err);
	is($out, join('', map { "$_\n" } @bare),
		'--no-xids --no-lsn --no-oids match include-xids/lsn/oids off');

	my @timed = peek_text("'include-timestamp', '1'");
	($rc, $out, $err) = decode_stream($stream, '--timestamp');
	is($rc, 0, 'decodes with --timestamp') or diag($err);
	is($out, join('', map { "$_\n" } @timed),
		'--timestamp matches include-timestamp (in UTC)');
}

# ---------------------------------------------------------------------------
# Over the replication protocol the text records are the same.
{
	my ($rc, $received, $err) = $node->pg_recvlogical_upto(
		'postgres', 'hd', $endpos, $PostgreSQL::Test::Utils::timeout_default,
		'format' => 'text',
		'include-timestamp' => '0',
		'key-cap' => '3',
		'value-cap' => '3',
		'heartbeat' => 'on');
	is($rc, 0, 'pg_recvlogical streams the slot') or diag($err);
	my @received = split /\n(?=hyperdrive 2 xid )/, $received // '';
	is(scalar(@received), scalar(@text),
		'pg_recvlogical received every record');
	is($received, $expected,
		'pg_recvlogical text equals the text read from SQL');
	is($node->psql('postgres', 'SELECT 1'),
		0, 'the server is still up after streaming');
}

# ---------------------------------------------------------------------------
# A hand-built record: what the server does not produce (NULL key values,
# keyword and quoted names, 64-bit xid, commit_time) renders per the spec.
sub str { return pack('N/a*', $_[0]) }
{
	my $record =
	    pack('a C n Q> Q> Q> q>', 'H', 1, 0x0001, 4294967301, 2**32 + 0x10,
		2**32 + 0x40, 1_234_567)
	  . str('REVOKE')
	  . pack('N', 1)
	  . pack('N C C', 16500, 0x01 | 0x04, 0)
	  . str('My Schema')
	  . str('select')
	  . pack('N', 2)
	  . pack('N', 16400) . str('public') . str('par"ent')
	  . pack('N', 16300) . str('_ok1') . str('name')
	  . pack('N', 2) . str('user') . str('Id')
	  . pack('N', 2)
	  . pack('N', 3) . "a'b" . pack('l>', -1)
	  . pack('N', 0) . pack('N', 2) . "x\\"
	  . pack('N', 1)
	  . str('DROP FUNCTION') . str('') . str('') . pack('N N', 0, 0);
	my $want =
	    "hyperdrive 1 xid 4294967301 commit_lsn 1/10 end_lsn 1/40 "
	  . "commit_time 2000-01-01 00:00:01.234567+00\n"
	  . "invalidate all (REVOKE)\n"
	  . 'relation "My Schema"."select" oid 16500 changes insert,delete '
	  . 'ancestors public."par""ent" oid 16400,_ok1.name oid 16300 '
	  . q{key ("user","Id") rows ('a''b',NULL) ('',E'x\\\\')} . "\n"
	  . "ddl DROP FUNCTION\n";
	my ($rc, $out, $err) =
	  decode_stream('\\x' . unpack('H*', $record) . "\n", '--timestamp');
	is($rc, 0, 'hand-built record decodes') or diag($err);
	is($out, $want, 'hand-built record renders per docs/stream.md');
}

# ---------------------------------------------------------------------------
# Malformed input: exit status 1, a message naming the line, no crash.
sub refused
{
	my ($input, $line, $pattern, $name) = @_;
	my ($rc, $out, $err, $signal) = decode_stream($input);
	is($signal, 0, "$name: no crash");
	is($rc, 1, "$name: exit status 1");
	like($err, qr/^hyperdrive decode-stream: line $line: .*$pattern/,
		"$name: the message names line $line");
}

my ($richest) = sort { length($b) <=> length($a) } @compact;
my $half = substr($richest, 0, 2 + 2 * int((length($richest) - 2) / 4));
refused("$half\n", 1, qr/truncated/, 'truncated record');
(my $v3 = $compact[0]) =~ s/^\\x4802/\\x4803/;
refused("$compact[0]\n$v3\n", 2, qr/version 3/, 'wrong version byte');
(my $not_h = $compact[0]) =~ s/^\\x48/\\x49/;
refused("$not_h\n", 1, qr/not a hyperdrive record/, 'wrong first byte');
refused("$compact[0]00\n", 1, qr/unexpected bytes/, 'trailing bytes');
refused("hello\n", 1, qr/hex form/, 'not hex');
refused("\\x48zz\n", 1, qr/hex digit/, 'bad hex digit');
refused("\n", 1, qr/hex form/, 'empty line');

# Every proper prefix of the richest record is refused, without a crash.
{
	my $bad = 0;
	for (my $n = 2; $n < length($richest); $n += 2)
	{
		my ($rc, $out, $err, $signal) =
		  decode_stream(substr($richest, 0, $n) . "\n");
		$bad++
		  unless $rc == 1
		  && $signal == 0
		  && $err =~ /^hyperdrive decode-stream: line 1: malformed record: at offset \d+: /;
	}
	is($bad, 0, 'every truncation of the richest record is refused cleanly');
}

# fail_ok: if the server crashed, the failure is reported above already
$node->stop('fast', fail_ok => 1);
done_testing();
