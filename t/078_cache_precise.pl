# Precise invalidation, end to end (docs/cache.md, "Precise invalidation"): a
# cached result restricted by column = value is dropped only by a change to a
# row whose old or new value of that column is one of its values, and kept
# across writes to other rows. A real origin (the extension's stream version
# 2 and hyperdrive.watch_column()), the agent, clients through it. Every read
# is also compared with the origin's own answer.
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;
use IO::Socket::INET;
use PgWire;

CacheHarness::setup(tag => '078_cache_precise', node => 'origin78', extra_sql => <<'SQL');
SET ROLE app;
-- REPLICA IDENTITY FULL: old rows carry every column
CREATE TABLE pv (id int PRIMARY KEY, grp int NOT NULL, v text NOT NULL);
ALTER TABLE pv REPLICA IDENTITY FULL;
INSERT INTO pv SELECT i, i % 5, 'v' || i FROM generate_series(1, 50) i;
-- the default identity (the primary key): old rows carry the key only
CREATE TABLE pd (id int PRIMARY KEY, grp int NOT NULL, v text NOT NULL);
INSERT INTO pd SELECT i, i % 5, 'v' || i FROM generate_series(1, 50) i;
-- USING INDEX
CREATE TABLE pu (id int NOT NULL, code text NOT NULL, v text NOT NULL);
CREATE UNIQUE INDEX pu_code ON pu (code);
ALTER TABLE pu REPLICA IDENTITY USING INDEX pu_code;
INSERT INTO pu SELECT i, 'c' || i, 'v' || i FROM generate_series(1, 20) i;
-- a partitioned table whose first leaf numbers its columns differently
CREATE TABLE pp (id int NOT NULL, grp int NOT NULL, v text NOT NULL) PARTITION BY LIST (grp);
CREATE TABLE pp1 (grp int NOT NULL, v text NOT NULL, id int NOT NULL);
ALTER TABLE pp ATTACH PARTITION pp1 FOR VALUES IN (1);
CREATE TABLE pp2 PARTITION OF pp FOR VALUES IN (2);
CREATE TABLE pp3 PARTITION OF pp FOR VALUES IN (3);
ALTER TABLE pp1 REPLICA IDENTITY FULL;
ALTER TABLE pp2 REPLICA IDENTITY FULL;
ALTER TABLE pp3 REPLICA IDENTITY FULL;
INSERT INTO pp SELECT i, 1 + i % 3, 'v' || i FROM generate_series(1, 30) i;
-- a bound column stored out of line (TOAST)
CREATE TABLE pt (id int PRIMARY KEY, t text NOT NULL, v int NOT NULL);
ALTER TABLE pt ALTER COLUMN t SET STORAGE EXTERNAL;
INSERT INTO pt VALUES (1, repeat('a', 5000), 0), (2, repeat('b', 5000), 0);
RESET ROLE;
SQL
ok(start_agent(), 'the agent listens');
ok(stream_ready(),
	'the config\'s change stream connects');

# The origin's own answer, as psql -A -t prints it.
sub direct { my ($sql) = @_; return $node->safe_psql('app', $sql); }

# Waits until the agent has applied everything the origin wrote so far.
sub synced
{
	my $lsn = direct('SELECT pg_current_wal_insert_lsn()');
	return wait_for(sub {
		my $a = cache_status()->{applied_lsn} // '0/0';
		direct("SELECT '$a'::pg_lsn >= '$lsn'::pg_lsn") eq 't';
	}, 10);
}

# Waits until the plugin carries the values of table.column (watch_column()).
sub watched
{
	my ($table, $column) = @_;
	return wait_for(sub {
		direct("SELECT count(*) FROM hyperdrive.watched_column w JOIN pg_attribute a "
			  . "ON a.attrelid = w.relid AND a.attnum = w.attnum "
			  . "WHERE w.relid = '$table'::regclass AND a.attname = '$column'") > 0;
	}, 10);
}

# One read through the agent: (its rows, 'hit' or 'miss').
sub read_once
{
	my ($read) = @_;
	my $s0 = cache_status();
	my $got = ref $read ? $read->[0]->() : sel($read);
	my $s1 = cache_status();
	my $how = $s1->{hits} > $s0->{hits} ? 'hit' : $s1->{misses} > $s0->{misses} ? 'miss' : '?';
	return ($got, $how);
}

# read: SQL text (simple protocol), or [ code returning the rows, the SQL of
# the origin's answer ]. After write (on the origin), the read is a hit
# (want 'hit': the entry survived) or a miss (want 'miss': dropped), and
# returns the origin's answer either way.
sub after_write
{
	my ($name, $read, $write, $want) = @_;
	my $sql = ref $read ? $read->[1] : $read;
	my ($got, $how);
	# cached first (a miss, then hits)
	ok(wait_for(sub { ($got, $how) = read_once($read); $how eq 'hit' }, 10), "$name: cached")
	  or return;
	direct($write);
	ok(synced(), "$name: the stream applied the write") or return;
	($got, $how) = read_once($read);
	is($how, $want, "$name: the next read is a $want");
	is($got, direct($sql), "$name: and returns the origin's answer");
}

my $c1 = cache_status();

# ---------------------------------------------------------------------------
# REPLICA IDENTITY FULL: old and new values of every changed row.
my $g1 = 'SELECT id, v FROM pv WHERE grp = 1 ORDER BY id';
my $g2 = 'SELECT id, v FROM pv WHERE grp = 2 ORDER BY id';
my $g12 = 'SELECT id, v FROM pv WHERE grp IN (1, 2) ORDER BY id';
my $gany = "SELECT id, v FROM pv WHERE grp = ANY('{3,4}'::int[]) ORDER BY id";
ok(defined warm($g1), 'pv: a read bound to grp = 1 is cached');
ok(watched('pv', 'grp'), 'pv: the agent had the plugin watch pv.grp');
ok(cache_status()->{fill_relations_by_value} > $c1->{fill_relations_by_value},
	'SHOW CACHE counts a fill bound to values');

after_write('another row (the point of it all)', $g1, "UPDATE pv SET v = v || '+' WHERE id = 3", 'hit');
after_write('a row of the group', $g1, "UPDATE pv SET v = v || '+' WHERE id = 6", 'miss');
after_write('a row moving in (UPDATE of the bound column)', $g1,
	'UPDATE pv SET grp = 1 WHERE id = 2', 'miss');
after_write('a row moving out (its old value)', $g2, 'UPDATE pv SET grp = 1 WHERE id = 7', 'miss');
after_write('moving between two other groups', $g1, 'UPDATE pv SET grp = 4 WHERE id = 8', 'hit');
after_write('DELETE of a row of the group', $g1, 'DELETE FROM pv WHERE id = 11', 'miss');
after_write('DELETE of another row', $g1, 'DELETE FROM pv WHERE id = 12', 'hit');
after_write('INSERT into the group', $g1, "INSERT INTO pv VALUES (101, 1, 'new')", 'miss');
after_write('INSERT elsewhere', $g1, "INSERT INTO pv VALUES (102, 3, 'new')", 'hit');
after_write('a key change of a row of the group', $g1, 'UPDATE pv SET id = 201 WHERE id = 16', 'miss');
after_write('a key change of another row', $g1, 'UPDATE pv SET id = 202 WHERE id = 13', 'hit');
after_write('IN: a change to one of its values', $g12, "UPDATE pv SET v = 'x' WHERE id = 17", 'miss');
after_write('IN: to neither', $g12, "UPDATE pv SET v = 'x' WHERE id = 18", 'hit');
after_write('= ANY(array): to one of its values', $gany, "UPDATE pv SET v = 'y' WHERE id = 19", 'miss');
after_write('= ANY(array): to neither', $gany, "UPDATE pv SET v = 'y' WHERE id = 21", 'hit');
after_write('a transaction of several rows, none in the group', $g1,
	"BEGIN; UPDATE pv SET v = 'm' WHERE id = 22; UPDATE pv SET v = 'm' WHERE id = 23; "
	  . "DELETE FROM pv WHERE id = 24; COMMIT", 'hit');
after_write('a transaction of several rows, one in the group', $g1,
	"BEGIN; UPDATE pv SET v = 'n' WHERE id = 27; UPDATE pv SET v = 'n' WHERE id = 26; COMMIT",
	'miss');
after_write('a transaction moving a row out and back', $g1,
	'BEGIN; UPDATE pv SET grp = 3 WHERE id = 1; UPDATE pv SET grp = 1 WHERE id = 1; COMMIT', 'miss');
after_write('a bound column and a condition that binds nothing (grp = 1 AND v <> ...)',
	"SELECT id FROM pv WHERE grp = 1 AND v <> 'zz' ORDER BY id", "UPDATE pv SET v = 'o' WHERE id = 29", 'hit');
# two bound columns: the entry is bound to the one the stream names rows by
# (pv.grp), whichever the query names first
after_write('two bound columns (id = 3 AND grp = 3): a row of another group',
	'SELECT id, v FROM pv WHERE id = 3 AND grp = 3', "UPDATE pv SET v = 'b2' WHERE id = 29", 'hit');
after_write('two bound columns: another row of its group (bound to grp, not id)',
	'SELECT id, v FROM pv WHERE id = 3 AND grp = 3', "UPDATE pv SET v = 'b2' WHERE id = 33", 'miss');
after_write('two bound columns: its row', 'SELECT id, v FROM pv WHERE id = 3 AND grp = 3',
	"UPDATE pv SET v = 'b3' WHERE id = 3", 'miss');
# one precision column per relation: a read bound to another column is read whole
{
	my $w0 = cache_status()->{fill_relations_whole};
	after_write('bound to another column of the same table (read whole)',
		"SELECT id FROM pv WHERE v = 'v33'", "UPDATE pv SET v = 'p' WHERE id = 34", 'miss');
	ok(cache_status()->{fill_relations_whole} > $w0, 'SHOW CACHE counts it as read whole');
}
after_write('TRUNCATE of another table', $g1, 'TRUNCATE pu', 'hit');
direct("INSERT INTO pu SELECT i, 'c' || i, 'v' || i FROM generate_series(1, 20) i");
after_write('TRUNCATE of its table', $g1, 'TRUNCATE pv', 'miss');
direct("INSERT INTO pv SELECT i, i % 5, 'v' || i FROM generate_series(1, 50) i");

# Parameters: the extended protocol, text and binary formats.
{
	my $e = raw_connect('app', $PW, 'app');
	my $rows = sub { join("\n", map { join('|', map { $_ // '' } @$_) } @{ $_[0]{rows} }) };
	my $ext = sub {
		my ($sql, $params, $formats) = @_;
		my $msg = pq_parse('', $sql) . pq_bind('', $params, '', $formats // []) . pq_describe('P')
		  . pq_execute() . pq_sync();
		w_send($e, $msg);
		return $rows->(w_result($e, 30));
	};
	my $sql = 'SELECT id, v FROM pv WHERE grp = $1 ORDER BY id';
	after_write('$1 in text format: another row', [ sub { $ext->($sql, ['2']) }, $g2 ],
		"UPDATE pv SET v = 'q' WHERE id = 3", 'hit');
	after_write('$1 in text format: a row of its value', [ sub { $ext->($sql, ['2']) }, $g2 ],
		"UPDATE pv SET v = 'q' WHERE id = 2", 'miss');
	after_write('$1 in binary format: another row',
		[ sub { $ext->($sql, [ pack('N', 2) ], [1]) }, $g2 ],
		"UPDATE pv SET v = 'r' WHERE id = 3", 'hit');
	after_write('$1 in binary format: a row of its value',
		[ sub { $ext->($sql, [ pack('N', 2) ], [1]) }, $g2 ],
		"UPDATE pv SET v = 'r' WHERE id = 7", 'miss');
	my $anysql = 'SELECT id, v FROM pv WHERE grp = ANY($1) ORDER BY id';
	after_write('= ANY($1) (an int array): another row', [ sub { $ext->($anysql, ['{1,2}']) }, $g12 ],
		"UPDATE pv SET v = 's' WHERE id = 3", 'hit');
	after_write('= ANY($1): a row of one of its values', [ sub { $ext->($anysql, ['{1,2}']) }, $g12 ],
		"UPDATE pv SET v = 's' WHERE id = 6", 'miss');
	close $e->{sock};
}

# ---------------------------------------------------------------------------
# The default identity: old rows carry the key only.
{
	my $col0 = cache_status()->{changes_by_column};
	my $k5 = 'SELECT id, v FROM pd WHERE id = 5';
	ok(defined warm($k5), 'pd: a read bound to the key is cached');
	ok(watched('pd', 'id'), 'pd: the plugin watches pd.id');
	after_write('default identity, bound to the key: another row', $k5,
		"UPDATE pd SET v = v || '+' WHERE id = 6", 'hit');
	after_write('default identity, bound to the key: its row', $k5,
		"UPDATE pd SET v = v || '+' WHERE id = 5", 'miss');
	after_write('default identity, bound to the key: a key change to its value', $k5,
		'BEGIN; DELETE FROM pd WHERE id = 5; UPDATE pd SET id = 5 WHERE id = 9; COMMIT', 'miss');
	after_write('default identity: DELETE of another row', $k5, 'DELETE FROM pd WHERE id = 10', 'hit');
	is(cache_status()->{changes_by_column}, $col0, 'no change fell back for want of values so far');
}

# USING INDEX: the index's columns are the identity.
after_write('USING INDEX, bound to its column: another row',
	"SELECT id, v FROM pu WHERE code = 'c3'", "UPDATE pu SET v = 'w' WHERE code = 'c4'", 'hit');
after_write('USING INDEX, bound to its column: its row',
	"SELECT id, v FROM pu WHERE code = 'c3'", "UPDATE pu SET v = 'w' WHERE code = 'c3'", 'miss');

# ---------------------------------------------------------------------------
# Partitions: a leaf's change is checked against the parent's column (by name).
{
	my $p1 = 'SELECT id, v FROM pp WHERE grp = 1 ORDER BY id';
	my $p2 = 'SELECT id, v FROM pp WHERE grp = 2 ORDER BY id';
	ok(defined warm($p1), 'pp: a read of the parent bound to grp is cached');
	ok(watched('pp', 'grp'), 'pp: the plugin watches pp.grp');
	after_write('partitioned: a change in another leaf', $p1, "UPDATE pp SET v = 'a' WHERE id = 2", 'hit');
	after_write('partitioned: a change in its leaf (other attnums)', $p1,
		"UPDATE pp SET v = 'a' WHERE id = 3", 'miss');
	after_write('partitioned: a row moving to another leaf, seen from the old one', $p1,
		'UPDATE pp SET grp = 2 WHERE id = 6', 'miss');
	after_write('partitioned: a row moving to another leaf, seen from the new one', $p2,
		'UPDATE pp SET grp = 2 WHERE id = 9', 'miss');
	after_write('partitioned: a row moving between two other leaves', $p1,
		'UPDATE pp SET grp = 3 WHERE id = 5', 'hit');
}

# ---------------------------------------------------------------------------
# A bound column out of line (TOAST): unchanged, its value is not in the WAL
# under the default identity (every entry bound to the column goes); under
# FULL the old row carries it.
{
	my $ta = "SELECT id, v FROM pt WHERE t = repeat('a', 5000)";
	ok(defined warm($ta), 'pt: a read bound to a TOASTed column is cached');
	ok(watched('pt', 't'), 'pt: the plugin watches pt.t');
	my $col0 = cache_status()->{changes_by_column};
	after_write('TOAST, default identity: another row, its value unknown', $ta,
		'UPDATE pt SET v = v + 1 WHERE id = 2', 'miss');
	ok(cache_status()->{changes_by_column} > $col0, 'SHOW CACHE counts the fallback by column');
	direct('ALTER TABLE pt REPLICA IDENTITY FULL');
	ok(synced(), 'the identity is FULL now');
	ok(defined warm($ta), 'pt: cached again');
	ok(watched('pt', 't'), 'pt: still watched');
	after_write('TOAST, FULL: another row', $ta, 'UPDATE pt SET v = v + 1 WHERE id = 2', 'hit');
	after_write('TOAST, FULL: its row', $ta, 'UPDATE pt SET v = v + 1 WHERE id = 1', 'miss');
}

# Under the default identity an UPDATE that keeps the key names the key's
# value (old = new) whatever other columns it changes.
after_write('default identity, bound to the key: an UPDATE of another row\'s other columns',
	'SELECT id FROM pd WHERE id IN (1, 2) AND grp >= 0 ORDER BY id',
	'UPDATE pd SET grp = 4, v = \'t\' WHERE id = 40', 'hit');

my $c2 = cache_status();
ok($c2->{changes_by_value} > $c1->{changes_by_value}, 'SHOW CACHE counts changes by value');
ok($c2->{changes_by_relation} + $c2->{changes_all} > 0, 'and by relation or all (TRUNCATE, DDL)');
my ($rc, $metrics) = (0, '');
{
	my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$mport", Timeout => 5);
	if ($sock)
	{
		print $sock "GET /metrics HTTP/1.0\r\n\r\n";
		local $/;
		$metrics = <$sock> // '';
	}
}
like($metrics, qr/^hyperdrive_cache_change_relations_total\{config="app",kind="value"\} [1-9]/m,
	'/metrics counts changes by kind');
like($metrics, qr/^hyperdrive_cache_fill_relations_total\{config="app",precision="value"\} [1-9]/m,
	'/metrics counts fills bound to values');

$agent->signal('TERM');
$agent->finish;
done_testing();
