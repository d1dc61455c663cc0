# Precise invalidation (issue 12), the PostgreSQL driver's part: a cache fill
# of an extended-protocol statement whose analysis binds a column to a
# parameter ($n, docs/cache-analysis.md "bindings") asks the origin for the
# parameter's hashes with the client's very Bind bytes and formats
# (agent/pgwire/cache_params.h), after the client's statement and in the
# fill's transaction, with a named statement of the agent's own.
#
# Every answer through the agent is compared byte for byte with the same
# request through the config "nocache" (the same origin, caching off). That
# the hashing ran is seen twice: the origin's log (log_statement = all) has
# the agent's statement hd_param_hashes with the client's value, and SHOW
# CACHE counts the fill's relation as read by value (fill_relations_by_value),
# which it does only when the parameter's hashes are known.
use strict;
use warnings;

use File::Basename qw(dirname);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use HdTest;
use PgWire;

CacheHarness::setup(tag => '079_cache_param_hashes', node => 'origin79', extra_sql => <<'SQL');
SET ROLE app;
CREATE TABLE pt (id int PRIMARY KEY, k int, name text);
INSERT INTO pt SELECT g, g % 7, 'name ' || g FROM generate_series(1, 40) g;
CREATE TABLE pa (id int PRIMARY KEY, arr int[]);
INSERT INTO pa VALUES (1, '{1,2}'), (2, '{3}'), (3, '{1,2,3}');
CREATE TABLE pu (id int PRIMARY KEY, v text);
INSERT INTO pu SELECT g, 'v' || g FROM generate_series(1, 20) g;
CREATE SCHEMA kinds;
CREATE TYPE kinds."Mood" AS ENUM ('ok', 'meh');
CREATE TABLE pe (id int PRIMARY KEY, mood kinds."Mood");
INSERT INTO pe VALUES (1, 'ok'), (2, 'meh'), (3, 'ok');
CREATE TABLE po (id int PRIMARY KEY, v text);
INSERT INTO po SELECT g, 'o' || g FROM generate_series(1, 10) g;
RESET ROLE;
SQL
# one origin connection: the agent's fills and the clients' statements share it
hdcli('create one (caching on, one origin connection)', 'create', 'one',
	"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
	'--sslmode', 'disable', '--max-age', '300', '--origin-connection-limit', '1');
ok(start_agent(), 'the agent listens');
ok(stream_ready(),
	'the config\'s change stream connects');
ok(stream_ready('one'),
	'config one\'s change stream connects');

my $c = raw_connect('app', $PW, 'app');       # caching on
my $o = raw_connect('app', $PW, 'nocache');   # the origin's answer
strip_status(w_exchange($_, pq_query('SELECT 1'))) for ($c, $o);

# What the origin logged since $offset (a byte offset of its log).
sub origin_log_since { my ($offset) = @_; return slurp_from($node->logfile, $offset); }

# the hashing statements the origin ran since $offset, with their parameters
sub hashings
{
	my ($offset) = @_;
	my $log = origin_log_since($offset);
	my @h;
	while ($log =~ /execute hd_param_hashes: (SELECT [^\n]*)\n[^\n]*DETAIL:\s+parameters: ([^\n]*)/g)
	{
		push @h, "$1 | $2";
	}
	return @h;
}

# The same bytes on the caching and on the plain connection: the caching
# side's replies, the plain side's, and SHOW CACHE's hits and misses and
# precision counters as they moved.
sub exchange
{
	my ($got, $want, $before, $after) = exchange_both($c, $o, @_);
	return ($got, $want, map { $after->{$_} - $before->{$_} }
		qw(hits misses fill_relations_by_value fill_relations_whole));
}

# A request sent twice (a miss that fills, then a hit): both answers equal
# the origin's; the fill's relation counted by value ($by_value) or whole;
# the hashing statement the origin ran for the fill, with its parameters.
sub filled_ok
{
	my ($name, $bytes, %opt) = @_;
	my $off = -s $node->logfile;
	my ($g1, $w1, $h1, $m1, $v1, $wh1) = exchange($bytes);
	my ($g2, $w2, $h2) = exchange($bytes);
	is($m1, 1, "$name: first a miss");
	is($h2, 1, "$name: then a hit");
	is(unpack('H*', $g1), unpack('H*', $w1), "$name: the miss answers as the origin does");
	is(unpack('H*', $g2), unpack('H*', $w2), "$name: so does the hit");
	like($g1, $opt{like}, "$name: the expected rows") if $opt{like};
	if ($opt{by_value})
	{
		is($v1, 1, "$name: the fill's relation is read by value (its parameter hashed)");
		is($wh1, 0, "$name: ... not whole");
	}
	else
	{
		is($v1, 0, "$name: the fill's relation is not read by value");
		is($wh1, 1, "$name: ... but whole");
	}
	my @h = hashings($off);
	is(scalar @h, 1, "$name: the origin ran the hashing statement once") or diag(explain(\@h));
	like($h[0] // '', $opt{hashing}, "$name: with the client's parameter") if $opt{hashing};
	return $g1;
}

my $Q = 'SELECT id, name FROM pt WHERE id = $1';

# ---------------------------------------------------------------------------
# = $1 on an int column, text and binary

filled_ok('= $1, text',
	pq_parse('', $Q) . pq_bind('', ['5']) . pq_describe('P') . pq_execute() . pq_sync(),
	like => qr/name 5/, by_value => 1,
	hashing => qr/^SELECT hyperdrive\.hash_value\(\$1\), hyperdrive\.hash_values\(ARRAY\[\$1\]\) \| \$1 = '5'$/);

filled_ok('= $1, binary int4',
	pq_parse('', $Q, 23) . pq_bind('', [pack('N', 6)], undef, [1]) . pq_describe('P') .
	  pq_execute() . pq_sync(),
	like => qr/name 6/, by_value => 1, hashing => qr/\| \$1 = '6'$/);

# the bytes of a parameter are the client's: an int8 parameter in binary
filled_ok('= $1, binary int8',
	pq_parse('', $Q, 20) . pq_bind('', [pack('q>', 7)], undef, [1]) . pq_describe('P') .
	  pq_execute() . pq_sync(),
	like => qr/name 7/, by_value => 1, hashing => qr/\| \$1 = '7'$/);

# several parameters, one not bound (k is compared with an expression)
filled_ok('two parameters, both hashed, a third that binds nothing',
	pq_parse('', 'SELECT id FROM pt WHERE id = $1 AND k = $2 AND name <> $3', 23, 23, 25) .
	  pq_bind('', ['8', '1', 'x']) . pq_execute() . pq_sync(),
	like => qr/8/, by_value => 1,
	hashing => qr/hash_value\(\$2\).*\| \$1 = '8', \$2 = '1'$/);

# ---------------------------------------------------------------------------
# = ANY($1) with an int array, text and binary

sub int4_array_bin
{
	my @v = @_;
	return pack('N N N N N', 1, 0, 23, scalar @v, 1) . join('', map { pack('N l>', 4, $_) } @v);
}

my $QA = 'SELECT id, name FROM pt WHERE id = ANY($1) ORDER BY id';
filled_ok('= ANY($1), text',
	pq_parse('', $QA) . pq_bind('', ['{9,10}']) . pq_describe('P') . pq_execute() . pq_sync(),
	like => qr/name 9.*name 10/s, by_value => 1, hashing => qr/\| \$1 = '\{9,10\}'$/);
filled_ok('= ANY($1), binary int4[]',
	pq_parse('', $QA, 1007) . pq_bind('', [int4_array_bin(11, 12, 11)], undef, [1]) .
	  pq_describe('P') . pq_execute() . pq_sync(),
	like => qr/name 11.*name 12/s, by_value => 1, hashing => qr/\| \$1 = '\{11,12,11\}'$/);

# ---------------------------------------------------------------------------
# a NULL parameter: no hashes, the relation read whole

filled_ok('a NULL parameter',
	pq_parse('', 'SELECT id FROM pt WHERE id = $1', 23) . pq_bind('', [undef]) . pq_execute() .
	  pq_sync(),
	by_value => 0, hashing => qr/\| \$1 = NULL$/);

# ---------------------------------------------------------------------------
# a parameter the origin refuses: exactly its error, and nothing after it

{
	my $bad = pq_parse('', $Q, 23) . pq_bind('', ['5x']) . pq_describe('P') . pq_execute() .
	  pq_sync();
	for my $round (1 .. 2)
	{
		my $off = -s $node->logfile;
		my ($g, $w, $h) = exchange($bad);
		is(unpack('H*', $g), unpack('H*', $w), "'5x' for int4 ($round): the origin's error, as it is");
		my %e = map { $_->[0] eq 'E' ? %{ err_fields($_->[1]) } : () } split_msgs($g);
		is($e{C}, '22P02', "'5x' for int4 ($round): invalid_text_representation");
		is($h, 0, "'5x' for int4 ($round): no hit");
		unlike(origin_log_since($off), qr/execute hd_param_hashes/,
			"'5x' for int4 ($round): no hashing ran (the transaction was aborted)");
	}
	my ($g, $w, $h) = exchange(pq_parse('', $Q) . pq_bind('', ['5']) . pq_describe('P') .
		  pq_execute() . pq_sync());
	is(unpack('H*', $g), unpack('H*', $w), 'after the error the connection answers as the origin does');
	is($h, 1, '... from the cache');
	my $r = w_query($c, 'SELECT count(*) FROM pt');
	is($r->{rows}[0][0], '40', '... and a simple query still runs');
}

# an array column compared whole with an array parameter: bound too; the
# hashes include the whole value's, so a change of that row drops the entry
{
	my $q = pq_parse('', 'SELECT id FROM pa WHERE arr = $1', 1007) . pq_bind('', ['{1,2}']) .
	  pq_execute() . pq_sync();
	filled_ok('an array column = $1', $q, by_value => 1, like => qr/\x00\x00\x00\x011/,
		hashing => qr/\| \$1 = '\{1,2\}'$/);
	$node->safe_psql('app', "UPDATE pa SET arr = '{1,2}' WHERE id = 3");
	my $g;
	ok(wait_for(sub {
		$g = strip_status(w_exchange($c, $q));
		return $g =~ /\x00\x00\x00\x013/;
	}, 10), 'an array column = $1: a row now equal to the parameter shows (the entry was dropped)');
	is(unpack('H*', $g), unpack('H*', strip_status(w_exchange($o, $q))),
		'an array column = $1: as the origin answers');
}

# a parameter of a type of the user's, in a schema not on the search_path:
# its type comes back from the analysis by name (regtype) as the same OID
filled_ok('a parameter of an enum type outside the search_path',
	pq_parse('', 'SELECT id FROM pe WHERE mood = $1 ORDER BY id') . pq_bind('', ['meh']) .
	  pq_execute() . pq_sync(),
	by_value => 1, hashing => qr/\| \$1 = 'meh'$/);

# ---------------------------------------------------------------------------
# Two clients on one origin connection: A parses the unnamed statement in one
# batch and binds it in a later one; B's fills (each hashing its parameter)
# run on that connection in between. A still runs its own statement.
{
	my $a = raw_connect('app', $PW, 'one');
	my $b = raw_connect('app', $PW, 'one');
	my $oa = raw_connect('app', $PW, 'nocache');	# what A gets from the origin
	strip_status(w_exchange($_, pq_query('SELECT 1'))) for ($a, $b, $oa);
	my $off = -s $node->logfile;
	my $qa = 'SELECT v, id FROM pu WHERE id = $1';
	my $parsed = strip_status(w_exchange($a, pq_parse('', $qa, 23) . pq_sync()));
	is(unpack('H*', $parsed), unpack('H*', strip_status(w_exchange($oa, pq_parse('', $qa, 23) . pq_sync()))),
		'A: its Parse of the unnamed statement answered as the origin does');
	my $before = cache_status('one');
	for my $v (3, 4, 5)
	{
		my $req = pq_parse('', $Q) . pq_bind('', [$v]) . pq_describe('P') . pq_execute() . pq_sync();
		my $g = strip_status(w_exchange($b, $req));
		is(unpack('H*', $g), unpack('H*', strip_status(w_exchange($o, $req))),
			"B: its statement for $v answered as the origin does");
	}
	my $after = cache_status('one');
	is($after->{misses} - $before->{misses}, 3, 'B: three fills ran on the one origin connection');
	is(scalar(hashings($off)), 3, 'B: each hashed its parameter there');
	my $use = pq_bind('', ['7']) . pq_describe('P') . pq_execute() . pq_sync();
	my $g = strip_status(w_exchange($a, $use));
	my $w = strip_status(w_exchange($oa, $use));
	is(unpack('H*', $g), unpack('H*', $w), 'A: its Bind of the unnamed statement runs its own statement');
	like($g, qr/v7/, 'A: with its own rows');
	$g = strip_status(w_exchange($a, $use));
	is(unpack('H*', $g), unpack('H*', $w), 'A: and again (from the cache or not, the same bytes)');
	w_close($_) for ($a, $b, $oa);
}

# ---------------------------------------------------------------------------
# An older extension: analyze_query() without param_types (0.3 before it),
# then without bindings too (0.2). The fill still answers as the origin
# does, nothing is hashed, the relation is read whole (counted as such when
# the analysis bound it).
sub older_analysis
{
	my ($name, $columns, $bound) = @_;
	$node->safe_psql('app', <<"SQL");
DROP FUNCTION IF EXISTS hyperdrive.analyze_query(text, regtype[]);
CREATE FUNCTION hyperdrive.analyze_query(query text, param_types regtype[] DEFAULT '{}')
RETURNS TABLE (cacheable boolean, reason text, relations oid[], relation_names text[]$columns)
LANGUAGE sql STABLE AS \$\$
  SELECT cacheable, reason, relations, relation_names@{[ $columns ? ', bindings' : '' ]}
  FROM hyperdrive.analyze_query_now(query, param_types)
\$\$;
GRANT EXECUTE ON FUNCTION hyperdrive.analyze_query(text, regtype[]) TO PUBLIC;
SQL
	my $v = 0;
	for my $id (1 .. 2)
	{
		# (the DDL drops the analyses: the first request after it may be forwarded)
		my $req = pq_parse('', 'SELECT id, v FROM po WHERE id = $1') . pq_bind('', [$id]) .
		  pq_execute() . pq_sync();
		my $off = -s $node->logfile;
		my ($g, $w, $h, $m, $byv, $whole);
		ok(wait_for(sub {
			($g, $w, $h, $m, $byv, $whole) = exchange($req);
			return $m == 1;
		}, 10), "$name ($id): a fill ran");
		is(unpack('H*', $g), unpack('H*', $w), "$name ($id): it answers as the origin does");
		is($byv, 0, "$name ($id): nothing read by value");
		is($whole, $bound, $bound ? "$name ($id): the relation, bound, read whole"
			: "$name ($id): no binding counted");
		is(scalar(hashings($off)), 0, "$name ($id): no hashing");
		unlike(origin_log_since($off), qr/ERROR/, "$name ($id): no error on the origin");
		($g, $w, $h) = exchange($req);
		is($h, 1, "$name ($id): then a hit");
	}
}
$node->safe_psql('app',
	'ALTER FUNCTION hyperdrive.analyze_query(text, regtype[]) RENAME TO analyze_query_now');
older_analysis('0.3 without param_types', ', bindings text[]', 1);
older_analysis('0.2, no bindings', '', 0);

# nothing of the agent's hashing statement is left on the origin's connections
is($node->safe_psql('app',
		"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND usename = 'app'"),
	'0', 'no origin connection is left in a transaction');
unlike(slurp_from($node->logfile, 0), qr/prepared statement "hd_param_hashes" already exists/,
	'the hashing statement was closed after every fill');

w_close($_) for ($c, $o);
done_testing();
