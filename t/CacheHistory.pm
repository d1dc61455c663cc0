# CacheHistory: the randomized history test of the result cache
# (t/072_cache_history.pl): the workload's worker processes (connected with
# PgWire), and the checker that judges every read against the
# history of committed writes.
#
# The data: kv(id, v, tag), ids 1..NROWS, v starting at 0 with tag 'init'.
# Every write is an UPDATE setting v = v + 1 and a tag unique to that write,
# RETURNING v, so each committed version of a row is known exactly: (id, v,
# tag) names one write. A trigger keeps kv_group(g, total) = sum(v) of the
# rows with id % 4 = g; the view kv_v joins the two.
#
# The predicate table: kp(id, grp, v, tag), REPLICA IDENTITY FULL, ids
# 1..KP_IDS of which some are present at a time. Writes move rows between
# groups (grp 1..KP_GROUPS), one or two rows in a transaction, and insert and
# delete rows; a trigger numbers the writes of each id (kp_ver(id, n), locked
# by every write of the id, so in commit order): v of a present row is its
# number, a deletion is number (deleted v) + 1. So (id, v) names one version
# (present in a group, or absent) and the versions of an id are totally
# ordered. Reads: SELECT id, v, tag FROM kp WHERE grp = g / grp IN (a, b) /
# grp = ANY($1) ..., the shape whose results precise invalidation (issue 12)
# keeps across changes to other groups.
#
# A history is a list of operations, each a hash:
#   write: { op => 'w', conn, start, end, cstart (when its COMMIT, or the
#            autocommit statement, was sent), status => commit | abort | unknown,
#            ryw (1: the agent tracks it for read-your-writes), rows => { id => [v, tag] },
#            kp => { id => [v, grp or undef (deleted), tag] } (kp writes; rows is
#            then empty), aborted_rows / kp_aborted (the versions of a write that
#            rolled back) }
#   read:  { op => 'r', conn, start, end, kind, proto, sql, rows => [...] }
#          kind pred: arg => [groups], rows => [[id, v, tag]...]
# Times are CLOCK_MONOTONIC seconds (one clock for every process of the
# machine), taken before the first byte is sent and after the last byte is
# received: every interval contains the real event.
package CacheHistory;

use strict;
use warnings;

use File::Basename qw(dirname);
use List::Util qw(max min sum0 shuffle);
use Storable qw(nstore retrieve);
use POSIX ();
use Test::More;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC sleep);

use lib dirname(__FILE__);
use PgWire ();

our $NROWS = 40;
our $NGROUPS = 4;
our $KP_IDS = 24;			# kp's ids: 1..KP_IDS
our $KP_PRESENT = 16;		# present at first: 1..KP_PRESENT, v = 0, tag init
our $KP_GROUPS = 4;			# grp: 1..KP_GROUPS

my $INF = 1e18;

sub now { return clock_gettime(CLOCK_MONOTONIC); }

# ---------------------------------------------------------------------------
# The connections: PgWire's, with the simple protocol (Query) and the
# extended protocol (Parse/Bind/Describe/Execute/Sync with the unnamed
# statement and portal, text parameters: what node-postgres sends for a
# query with parameters).

# A logged-in connection: port (127.0.0.1) or unix (a socket path), user,
# password, db.
sub wire_connect
{
	my (%o) = @_;
	my $c = PgWire::w_login_or_die(port => $o{port}, path => $o{unix}, user => $o{user},
		password => $o{password}, db => $o{db}, timeout => 60);
	return bless $c, 'CacheHistory::Conn';
}

package CacheHistory::Conn;

# Reads up to ReadyForQuery: { rows => [[...]], tag, err, txn }.
sub result
{
	my ($c) = @_;
	my $w = PgWire::w_result($c, 60);
	die "connection closed" unless defined $w->{status};
	my %r = (rows => $w->{rows}, txn => $w->{status});
	$r{tag} = $w->{tags}[-1] if @{ $w->{tags} };
	$r{err} = ($w->{errors}[0]{C} // '?') . ': ' . ($w->{errors}[0]{M} // '?') if @{ $w->{errors} };
	return \%r;
}

sub simple
{
	my ($c, $sql) = @_;
	PgWire::w_send($c, PgWire::pq_query($sql));
	return $c->result;
}

sub extended
{
	my ($c, $sql, @params) = @_;
	PgWire::w_send($c, PgWire::extended_batch($sql, @params));
	return $c->result;
}

sub close_conn
{
	my ($c) = @_;
	PgWire::w_close($c);
}

package CacheHistory;

# ---------------------------------------------------------------------------
# The workload.

sub group_of { return $_[0] % $NGROUPS; }

# Quiet windows: writers pause in them, so that a stale entry left by a
# write burst would have to survive more than the bound to go unnoticed.
# [start, end) offsets from the start of the run.
sub quiet_windows
{
	my ($seed, $duration) = @_;
	srand($seed);
	my (@w, $t);
	$t = 0;
	while ($t < $duration)
	{
		$t += 0.8 + rand(1.2);		# writing
		my $q = 0.8 + rand(0.8);	# quiet: longer than the bound (0.5 s) by design
		push @w, [ $t, $t + $q ];
		$t += $q;
	}
	return \@w;
}

sub in_quiet
{
	my ($w, $off) = @_;
	for my $q (@$w)
	{
		return $q->[1] if $off >= $q->[0] && $off < $q->[1];
	}
	return undef;
}

# an id: two thirds of the time one of the hot six
sub pick_id
{
	my ($hot) = @_;
	return 1 + int(rand(6)) if rand() < $hot;
	return 1 + int(rand($NROWS));
}

# two ids of different groups, in group order (the lock order of every
# transaction: kv row, then its group's row, group by group; no deadlocks)
sub pick_pair
{
	my @pairs = ([ 1, 2 ], [ 3, 4 ], [ 5, 6 ], [ 7, 8 ]);
	my ($x, $y);
	if (rand() < 0.6)
	{
		($x, $y) = @{ $pairs[ int(rand(@pairs)) ] };
	}
	else
	{
		do { ($x, $y) = (pick_id(0.3), pick_id(0.3)); } while group_of($x) == group_of($y);
	}
	return group_of($x) < group_of($y) ? ($x, $y) : ($y, $x);
}

# kv, kv_group (kept by a trigger), the view kv_v and bump(), as role app
# (the caller resets the role).
sub kv_sql
{
	return <<'SQL';
SET ROLE app;
CREATE TABLE kv (id int PRIMARY KEY, v bigint NOT NULL, tag text NOT NULL);
INSERT INTO kv SELECT i, 0, 'init' FROM generate_series(1, 40) i;
CREATE TABLE kv_group (g int PRIMARY KEY, total bigint NOT NULL);
INSERT INTO kv_group SELECT g, 0 FROM generate_series(0, 3) g;
-- kv_group is written only by this trigger
CREATE FUNCTION kv_group_t() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE kv_group SET total = total + (NEW.v - OLD.v) WHERE g = NEW.id % 4;
	RETURN NULL;
END $$;
CREATE TRIGGER kv_group_t AFTER UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION kv_group_t();
CREATE VIEW kv_v AS SELECT k.id, k.v, k.tag, g.total FROM kv k JOIN kv_group g ON g.g = k.id % 4;
CREATE FUNCTION bump(i int, t text) RETURNS bigint LANGUAGE sql
  AS $$ UPDATE kv SET v = v + 1, tag = t WHERE id = i RETURNING v $$;
SQL
}

# kp's tables and its trigger (run as the owner, after kv's): the rows are
# inserted before the trigger exists, so that they are version 0.
sub kp_sql
{
	return <<"SQL";
CREATE TABLE kp (id int PRIMARY KEY, grp int NOT NULL, v bigint NOT NULL, tag text NOT NULL);
ALTER TABLE kp REPLICA IDENTITY FULL;
INSERT INTO kp SELECT i, 1 + i % $KP_GROUPS, 0, 'init' FROM generate_series(1, $KP_PRESENT) i;
-- per id, the number of its last write (present or deleted)
CREATE TABLE kp_ver (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO kp_ver SELECT i, 0 FROM generate_series(1, $KP_IDS) i;
CREATE FUNCTION kp_ver_t() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE
	k bigint;
BEGIN
	IF TG_OP = 'DELETE' THEN
		UPDATE kp_ver SET n = n + 1 WHERE id = OLD.id;
		RETURN OLD;
	END IF;
	UPDATE kp_ver SET n = n + 1 WHERE id = NEW.id RETURNING n INTO k;
	NEW.v := k;
	RETURN NEW;
END \$\$;
CREATE TRIGGER kp_ver_t BEFORE INSERT OR UPDATE OR DELETE ON kp FOR EACH ROW EXECUTE FUNCTION kp_ver_t();
SQL
}

# The model's start: { id => [v, grp or undef (absent), tag] } for ids
# 1..KP_IDS, as kp_sql() leaves them.
sub kp_init
{
	return { map { $_ => $_ <= $KP_PRESENT ? [ 0, 1 + $_ % $KP_GROUPS, 'init' ] : [ 0, undef, '' ] }
		  1 .. $KP_IDS };
}

# The same read from the origin (no write running): lines "id|n|grp|tag" of
# SELECT r.id, r.n, k.grp, k.tag FROM kp_ver r LEFT JOIN kp k USING (id)
# (psql -A: an absent row's grp and tag are empty).
sub kp_init_from
{
	my ($text) = @_;
	my %init;
	for my $line (split /\n/, $text)
	{
		my ($id, $n, $grp, $tag) = split /\|/, $line, -1;
		$init{$id} = [ $n, length($grp) ? $grp : undef, $tag ];
	}
	return \%init;
}

# Runs one worker until $o{until} (monotonic); stores its history in $o{out}.
#   role: owriter (on the origin) | awriter (through the agent) | reader:
#   kv's; kowriter | kawriter | kreader: the same for kp
sub run_worker
{
	my (%o) = @_;
	srand($o{seed});
	my @hist;
	my $conn = $o{name};
	my $c = wire_connect(%{ $o{connect} });
	my $seq = 0;
	my $t0 = $o{t0};
	eval {
		while (now() < $o{until})
		{
			if ($o{role} eq 'reader' || $o{role} eq 'kreader')
			{
				push @hist, $o{role} eq 'reader' ? do_read($c, $conn, $o{ext_share})
				  : do_kp_read($c, $conn, $o{ext_share});
				sleep(rand(0.004));
				next;
			}
			my $q = in_quiet($o{quiet}, now() - $t0);
			if (defined $q)
			{
				sleep($q - (now() - $t0) + 0.001);
				next;
			}
			my $via = $o{role} =~ /^k?owriter$/ ? 'origin' : 'agent';
			my $kp = $o{role} =~ /^k/;
			my $w = $kp ? do_kp_write($c, $conn, $via, "$conn-" . ++$seq)
			  : do_write($c, $conn, $via, "$conn-" . ++$seq);
			push @hist, $w;
			# through the agent: often read back at once on the same connection
			if ($via eq 'agent' && rand() < 0.7)
			{
				my $proto = rand() < 0.5 ? 'simple' : 'extended';
				if (!$kp)
				{
					push @hist, read_op($c, $conn, 'point', $proto, $w->{ids}[ int(rand(@{ $w->{ids} })) ]);
				}
				elsif (@{ $w->{groups} })
				{
					# a group the write left or entered, or both
					my @g = @{ $w->{groups} };
					my $arg = rand() < 0.3 ? [ sort { $a <=> $b } keys %{ { map { $_ => 1 } @g } } ]
					  : [ $g[ int(rand(@g)) ] ];
					push @hist, kp_read_op($c, $conn, $proto, $arg);
				}
			}
			sleep(-log(1 - rand()) * $o{think});
		}
		1;
	} or push @hist, { op => 'fatal', conn => $conn, what => "$@" };
	eval { $c->close_conn };
	nstore(\@hist, $o{out});
}

sub do_write
{
	my ($c, $conn, $via, $tag) = @_;
	my $x = rand();
	my %w = (op => 'w', conn => $conn, via => $via, ryw => ($via eq 'agent' ? 1 : 0), rows => {});
	$w{start} = now();
	if ($x < 0.5)
	{	# autocommit UPDATE
		my $id = pick_id(0.4);
		$w{ids} = [$id];
		$w{cstart} = $w{start};
		my $r = $c->simple("UPDATE kv SET v = v + 1, tag = '$tag' WHERE id = $id RETURNING v");
		$w{end} = now();
		$w{what} = 'update';
		if (!$r->{err} && @{ $r->{rows} }) { $w{status} = 'commit'; $w{rows}{$id} = [ $r->{rows}[0][0], $tag ]; }
		else { $w{status} = 'abort'; $w{err} = $r->{err}; }
	}
	elsif ($x < 0.65)
	{	# the function (through the agent: a SELECT, not tracked for read-your-writes)
		my $id = pick_id(0.4);
		$w{ids} = [$id];
		$w{cstart} = $w{start};
		my $r = $c->simple("SELECT bump($id, '$tag')");
		$w{end} = now();
		$w{what} = 'function';
		$w{ryw} = 0;
		if (!$r->{err} && @{ $r->{rows} }) { $w{status} = 'commit'; $w{rows}{$id} = [ $r->{rows}[0][0], $tag ]; }
		else { $w{status} = 'abort'; $w{err} = $r->{err}; }
	}
	else
	{	# a transaction of two rows; one in four rolls back
		my @ids = pick_pair();
		$w{ids} = \@ids;
		my $rollback = rand() < 0.25;
		$tag .= '-rb' if $rollback;
		$w{what} = $rollback ? 'rollback' : 'transaction';
		my $err;
		my $r = $c->simple('BEGIN');
		$err //= $r->{err};
		my %v;
		for my $id (@ids)
		{
			$r = $c->simple("UPDATE kv SET v = v + 1, tag = '$tag' WHERE id = $id RETURNING v");
			$err //= $r->{err};
			$v{$id} = $r->{rows}[0][0] if !$r->{err} && @{ $r->{rows} };
		}
		$w{cstart} = now();
		$r = $c->simple($rollback || $err ? 'ROLLBACK' : 'COMMIT');
		$w{end} = now();
		if (!$rollback && !$err && !$r->{err} && ($r->{tag} // '') eq 'COMMIT' && keys %v == 2)
		{
			$w{status} = 'commit';
			$w{rows}{$_} = [ $v{$_}, $tag ] for @ids;
		}
		else
		{
			$w{status} = 'abort';
			$w{err} = $err // $r->{err};
			# versions that were never committed: the checker must refuse them
			$w{aborted_rows}{$_} = [ $v{$_}, $tag ] for keys %v;
		}
	}
	return \%w;
}

# A write of kp: a row moved to another group (or its tag changed in its
# group), two rows moved in one transaction (one in four rolls back), a row
# inserted (if absent) or deleted. v comes from the trigger (RETURNING).
# groups: the groups the write left or entered (for reading back).
sub do_kp_write
{
	my ($c, $conn, $via, $tag) = @_;
	my $x = rand();
	my %w = (op => 'w', conn => $conn, via => $via, ryw => ($via eq 'agent' ? 1 : 0), rows => {},
		kp => {}, groups => []);
	# a move: grp + 1 + r (mod KP_GROUPS), r in 0 .. KP_GROUPS - 2; from the
	# returned grp, the one it left
	my $move = sub {
		my ($id) = @_;
		my $r = int(rand($KP_GROUPS - 1));
		my $set = rand() < 0.15 ? '' : "grp = 1 + (grp + $r) % $KP_GROUPS, ";
		my $left = sub {
			my ($g) = @_;
			return $set eq '' ? $g : 1 + (($g - 1 - $r - 1) % $KP_GROUPS + $KP_GROUPS) % $KP_GROUPS;
		};
		return ("UPDATE kp SET ${set}tag = '$tag' WHERE id = $id RETURNING v, grp", $left);
	};
	my $one = sub {
		my ($sql, $state, $left) = @_;
		$w{cstart} = $w{start} = now();
		my $r = $c->simple($sql);
		$w{end} = now();
		if ($r->{err}) { $w{status} = 'abort'; $w{err} = $r->{err}; return; }
		$w{status} = 'commit';
		return unless @{ $r->{rows} };		# nothing to change: a commit of nothing
		my ($v, $g) = @{ $r->{rows}[0] };
		my $id = $w{ids}[0];
		$w{kp}{$id} = $state eq 'deleted' ? [ $v + 1, undef, $tag ] : [ $v, $g, $tag ];
		$w{groups} = [ $state eq 'moved' ? ($left->($g), $g) : $g ];
	};
	if ($x < 0.5)
	{
		my $id = 1 + int(rand($KP_IDS));
		$w{ids} = [$id];
		$w{what} = 'move';
		my ($sql, $left) = $move->($id);
		$one->($sql, 'moved', $left);
	}
	elsif ($x < 0.65)
	{
		my $id = 1 + int(rand($KP_IDS));
		my $g = 1 + int(rand($KP_GROUPS));
		$w{ids} = [$id];
		$w{what} = 'insert';
		$one->("INSERT INTO kp (id, grp, v, tag) SELECT $id, $g, 0, '$tag' "
			  . "WHERE NOT EXISTS (SELECT 1 FROM kp WHERE id = $id) RETURNING v, grp", 'inserted');
	}
	elsif ($x < 0.8)
	{
		my $id = 1 + int(rand($KP_IDS));
		$w{ids} = [$id];
		$w{what} = 'delete';
		$one->("DELETE FROM kp WHERE id = $id RETURNING v, grp", 'deleted');
	}
	else
	{	# two rows, in id order (every write locks one id at a time, in that order)
		my ($p, $q);
		do { ($p, $q) = (1 + int(rand($KP_IDS)), 1 + int(rand($KP_IDS))); } while $p == $q;
		my @ids = sort { $a <=> $b } ($p, $q);
		$w{ids} = \@ids;
		my $rollback = rand() < 0.25;
		$tag .= '-rb' if $rollback;
		$w{what} = $rollback ? 'move2-rollback' : 'move2';
		$w{start} = now();
		my $err;
		my $r = $c->simple('BEGIN');
		$err //= $r->{err};
		my (%got, @groups);
		for my $id (@ids)
		{
			my ($sql, $left) = $move->($id);
			$r = $c->simple($sql);
			$err //= $r->{err};
			next if $r->{err} || !@{ $r->{rows} };
			my ($v, $g) = @{ $r->{rows}[0] };
			$got{$id} = [ $v, $g, $tag ];
			push @groups, $left->($g), $g;
		}
		$w{cstart} = now();
		$r = $c->simple($rollback || $err ? 'ROLLBACK' : 'COMMIT');
		$w{end} = now();
		if (!$rollback && !$err && !$r->{err} && ($r->{tag} // '') eq 'COMMIT')
		{
			$w{status} = 'commit';
			$w{kp} = \%got;
			$w{groups} = \@groups;
		}
		else
		{
			$w{status} = 'abort';
			$w{err} = $err // $r->{err};
			# versions that were never committed: the checker must refuse them
			$w{kp_aborted} = \%got;
		}
	}
	return \%w;
}

# A read of kp's rows in one or two groups.
sub do_kp_read
{
	my ($c, $conn, $ext_share) = @_;
	my $g = 1 + int(rand($KP_GROUPS));
	my $arg = [$g];
	if (rand() < 0.4)
	{
		my $h;
		do { $h = 1 + int(rand($KP_GROUPS)); } while $h == $g;
		$arg = [ sort { $a <=> $b } ($g, $h) ];
	}
	return kp_read_op($c, $conn, rand() < $ext_share ? 'extended' : 'simple', $arg);
}

# The statement of a kp read: (text, parameters). Extended: grp = $1 (text
# parameter), grp = ANY($1) (an int array, in text), grp IN ($1, $2).
sub kp_read_sql
{
	my ($proto, $arg) = @_;
	my $head = 'SELECT id, v, tag FROM kp WHERE grp';
	my @g = @$arg;
	if ($proto eq 'simple')
	{
		return ("$head = $g[0] ORDER BY id") if @g == 1;
		return ("$head IN (" . join(', ', @g) . ') ORDER BY id');
	}
	my $x = rand();
	return ("$head = \$1 ORDER BY id", $g[0]) if @g == 1 && $x < 0.6;
	return ("$head IN (" . join(', ', map { "\$$_" } 1 .. @g) . ') ORDER BY id', @g) if @g > 1 && $x < 0.35;
	return ("$head = ANY(\$1) ORDER BY id", '{' . join(',', @g) . '}');
}

sub kp_read_op
{
	my ($c, $conn, $proto, $arg) = @_;
	my ($sql, @params) = kp_read_sql($proto, $arg);
	my %r = (op => 'r', conn => $conn, kind => 'pred', proto => $proto, arg => $arg, sql => $sql);
	$r{start} = now();
	my $res = $proto eq 'simple' ? $c->simple($sql) : $c->extended($sql, @params);
	$r{end} = now();
	$r{sql} .= ' [' . join(', ', @params) . ']' if @params;
	$r{rows} = $res->{rows};
	$r{err} = $res->{err};
	return \%r;
}

my @KINDS = (
	[ point => 30 ], [ multi => 12 ], [ sum => 8 ], [ gsum => 8 ], [ group => 12 ],
	[ join => 15 ], [ view => 15 ]);

sub do_read
{
	my ($c, $conn, $ext_share) = @_;
	my $total = sum0(map { $_->[1] } @KINDS);
	my $x = rand($total);
	my $kind;
	for (@KINDS) { $kind = $_->[0]; last if ($x -= $_->[1]) < 0; }
	my $proto = rand() < $ext_share ? 'extended' : 'simple';
	my $arg;
	if ($kind eq 'multi')
	{
		my @sets = ([ 1, 2 ], [ 3, 4 ], [ 5, 6 ], [ 7, 8 ], [ 1, 2, 3, 4 ], [ 5, 6, 7, 8 ]);
		$arg = $sets[ int(rand(@sets)) ];
		$arg = [ pick_pair() ] if rand() < 0.2;
	}
	elsif ($kind eq 'gsum' || $kind eq 'group') { $arg = int(rand($NGROUPS)); }
	else { $arg = pick_id(0.7); }
	return read_op($c, $conn, $kind, $proto, $arg);
}

# The statement of a read: [simple text, extended text, parameters].
sub read_sql
{
	my ($kind, $arg) = @_;
	my %t = (
		point => 'SELECT v, tag FROM kv WHERE id = %s',
		sum => 'SELECT sum(v), count(*) FROM kv',
		gsum => 'SELECT sum(v), count(*) FROM kv WHERE id %% 4 = %s',
		group => 'SELECT total FROM kv_group WHERE g = %s',
		join => 'SELECT k.v, k.tag, g.total FROM kv k JOIN kv_group g ON g.g = k.id %% 4 WHERE k.id = %s',
		view => 'SELECT v, tag, total FROM kv_v WHERE id = %s');
	if ($kind eq 'multi')
	{
		my @a = @$arg;
		my $simple = 'SELECT id, v, tag FROM kv WHERE id IN (' . join(', ', @a) . ') ORDER BY id';
		my $ext = 'SELECT id, v, tag FROM kv WHERE id IN (' . join(', ', map { "\$$_" } 1 .. @a) . ') ORDER BY id';
		return ($simple, $ext, @a);
	}
	return ($t{sum}, $t{sum}) if $kind eq 'sum';
	return (sprintf($t{$kind}, $arg), sprintf($t{$kind}, '$1'), $arg);
}

sub read_op
{
	my ($c, $conn, $kind, $proto, $arg) = @_;
	my ($simple, $ext, @params) = read_sql($kind, $arg);
	my %r = (op => 'r', conn => $conn, kind => $kind, proto => $proto, arg => $arg);
	$r{start} = now();
	my $res = $proto eq 'simple' ? $c->simple($simple) : $c->extended($ext, @params);
	$r{end} = now();
	$r{sql} = $proto eq 'simple' ? $simple : $ext;
	$r{rows} = $res->{rows};
	$r{err} = $res->{err};
	return \%r;
}

# ---------------------------------------------------------------------------
# The run: worker processes for a while, with faults, and the verdict
# (t/072_cache_history.pl, t/080_cache_strict.pl).

# walsenders stopped (SIGSTOP) now: continued whatever happens
my @stopped;
END { kill 'CONT', @stopped if @stopped; }

# The pids of the walsenders of the configs' slots (database app of $node).
sub walsenders
{
	my ($node, @cfgs) = @_;
	my $slots = join(', ', map { "'hyperdrive_$_'" } @cfgs);
	return split /\n/, $node->safe_psql('app',
		"SELECT active_pid FROM pg_replication_slots WHERE slot_name IN ($slots) AND active_pid IS NOT NULL");
}

# Runs @$workers for $o{seconds} (with the faults if $o{faults}); the history.
# node: the origin; configs: whose walsenders the faults stop (for stop_for
# seconds, default 1.5) and then terminate.
sub run_history
{
	my (%o) = @_;
	my $node = $o{node};
	my $stop_for = $o{stop_for} // 1.5;
	my $dir = $o{dir};
	mkdir $dir or die "$dir: $!";
	my $t0 = CacheHistory::now() + 0.5;
	my $until = $t0 + $o{seconds};
	my $quiet = CacheHistory::quiet_windows($o{seed}, $o{seconds});
	my %pid;
	my $n = 0;
	for my $w (@{ $o{workers} })
	{
		my ($name, $role, $connect) = @$w;
		$n++;
		my $pid = fork() // die "fork: $!";
		if ($pid == 0)
		{
			# a worker: no Test::More or cluster teardown in this process
			my $ok = eval {
				CacheHistory::run_worker(name => $name, role => $role, connect => $connect,
					seed => $o{seed} * 100 + $n, t0 => $t0, until => $until, quiet => $quiet,
					think => 0.03, ext_share => 0.3, out => "$dir/$name");
				1;
			};
			print STDERR "worker $name: $@" unless $ok;
			POSIX::_exit($ok ? 0 : 1);
		}
		$pid{$pid} = $name;
	}
	# Faults, at the start of a write phase (writes go on meanwhile): the change
	# streams' walsenders are stopped (SIGSTOP) for stop_for seconds: hits must
	# stop within the bound; later they are terminated: the streams reconnect
	# and must catch up before a hit.
	my $first_write_after = sub {
		my ($off) = @_;
		for my $q (@$quiet) { return $q->[1] if $q->[1] >= $off; }
		return $off;
	};
	my @walsenders;
	my @faults = $o{faults}
	  ? ([ $first_write_after->(3), 'stop' ], [ $first_write_after->($o{seconds} / 2), 'terminate' ]) : ();
	@walsenders = walsenders($node, @{ $o{configs} }) if @faults;	# now: the query takes a while on a busy machine
	# bounded: every worker stops by itself at $until; stragglers are killed
	my $deadline = $until + 30;
	while (%pid && CacheHistory::now() < $deadline)
	{
		if (@faults && CacheHistory::now() - $t0 >= $faults[0][0])
		{
			my ($at, $what) = @{ shift @faults };
			if ($what eq 'stop')
			{
				@stopped = @walsenders;
				kill 'STOP', @stopped;
				@faults = sort { $a->[0] <=> $b->[0] } (@faults, [ CacheHistory::now() - $t0 + $stop_for, 'cont' ]);
			}
			elsif ($what eq 'cont') { kill 'CONT', @stopped; @stopped = (); }
			else
			{
				$node->safe_psql('app', "SELECT pg_terminate_backend(pid) FROM pg_stat_replication "
					  . "WHERE application_name = 'hyperdrive stream'");
			}
			diag(sprintf('fault at %.2f s: %s%s', CacheHistory::now() - $t0, $what,
					$what eq 'stop' ? ' (walsenders ' . join(', ', @stopped) . ')' : ''));
		}
		my $p = waitpid(-1, POSIX::WNOHANG());
		if ($p > 0) { is($? >> 8, 0, "$o{what}: worker $pid{$p} ends cleanly"); delete $pid{$p}; next; }
		sleep 0.05;
	}
	for my $p (keys %pid) { kill 'KILL', $p; waitpid($p, 0); fail("$o{what}: worker $pid{$p} did not stop"); }

	my @hist;
	for my $w (@{ $o{workers} })
	{
		my $f = "$dir/$w->[0]";
		push @hist, @{ retrieve($f) } if -e $f;
	}
	my @fatal = grep { $_->{op} eq 'fatal' } @hist;
	is(scalar(@fatal), 0, "$o{what}: no worker failed") or diag(join("\n", map { "$_->{conn}: $_->{what}" } @fatal));
	return \@hist;
}

# Checks a history against bound (seconds); prints what was done and found.
# The checker's result.
sub verdict
{
	my ($what, $hist, $dir, %o) = @_;
	my $c0 = CacheHistory::now();
	my $res = CacheHistory::check_history($hist, bound => $o{bound}, kp_init => $o{kp_init});
	diag(sprintf('%s: checked in %.1f s', $what, CacheHistory::now() - $c0));
	my @viol = @{ $res->{violations} };
	if (@viol)
	{
		my $show = $o{show} // 30;
		diag("$what: " . scalar(@viol) . " violations" . ($o{expected} ? ' (expected: the planted error)' : '')
			  . "; the first $show:");
		diag($_) for @viol[ 0 .. ($#viol < $show - 1 ? $#viol : $show - 1) ];
		diag("$what: history kept in $dir (Storable, one file per worker)");
	}
	my $st = $res->{stats};
	my @w = grep { $_->{op} eq 'w' } @$hist;
	my %wc;
	$wc{ ($_->{kp} || $_->{kp_aborted} ? 'kp/' : '') . "$_->{via}/$_->{what}/$_->{status}" }++ for @w;
	diag("$what: writes: " . join(', ', map { "$_=$wc{$_}" } sort keys %wc));
	my @w_err = grep { $_->{status} ne 'commit' && $_->{what} !~ /rollback/ } @w;
	diag("$what: writes that failed: " . join('; ', map { "$_->{conn}: " . ($_->{err} // '?') } @w_err[ 0 .. ($#w_err < 4 ? $#w_err : 4) ]))
	  if @w_err;
	diag("$what: reads checked: " . ($st->{checked} // 0) . ' (' . join(', ', map { "$_=$st->{reads}{$_}" } sort keys %{ $st->{reads} }) . ')');
	diag("$what: max observed staleness (s): " . join(', ', map { sprintf('%s=%.3f', $_, $st->{max_stale}{$_}) } sort keys %{ $st->{max_stale} }));
	return $res;
}

# ---------------------------------------------------------------------------
# The checker.
#
# check_history($hist, bound => seconds) returns { violations => [text...],
# stats => {...} }. For each read, each row value it shows (and each
# aggregate) must be:
#   - a committed version (or the initial one): never a rolled-back write's
#   - not from the future: from a write whose commit was sent before the
#     read's reply arrived (or was still possibly in flight)
#   - not stale: at least every version acknowledged more than `bound`
#     before the read was sent; for a connection that wrote through the
#     agent (a statement the agent tracks for read-your-writes), bound 0 for
#     its own last write and for everything acknowledged before that write
#     started (the position the agent waits for is taken after the write)
# and a read of several rows must not show half of a two-row transaction.
#
# A read of kp's rows in some groups (kind pred) must show the committed
# state of a moment within [start - bound, end]: exactly the rows then in
# those groups, each at its version then (check_pred()). kp_init: the model's
# start (kp_init(), the default, or kp_init_from()).
sub check_history
{
	my ($hist, %o) = @_;
	my $bound = $o{bound};
	my (@viol, %stats);
	my $kpm = kp_model($hist, $o{kp_init} // kp_init());
	push @viol, map { "history: $_" } @{ $kpm->{problems} };

	my (%ver, %acks, %starts, @pairs);
	for my $w (grep { $_->{op} eq 'w' } @$hist)
	{
		for my $id (keys %{ $w->{rows} })
		{
			my ($v, $tag) = @{ $w->{rows}{$id} };
			if ($w->{status} eq 'commit' || $w->{status} eq 'unknown')
			{
				$ver{"$id/$v/$tag"} = $w;
				push @{ $starts{$id} }, [ $w->{cstart}, $v ];
				push @{ $acks{$id} }, [ $w->{end}, $v ] if $w->{status} eq 'commit';
			}
		}
		push @pairs, $w if $w->{status} eq 'commit' && keys %{ $w->{rows} } == 2;
	}
	# per pair of rows: its two-row transactions in version order, and the versions
	my %pairs_of;
	for my $w (@pairs)
	{
		my ($x, $y) = sort { $a <=> $b } keys %{ $w->{rows} };
		push @{ $pairs_of{"$x,$y"}{w} }, $w;
	}
	for my $key (keys %pairs_of)
	{
		my ($x, $y) = split /,/, $key;
		my $p = $pairs_of{$key};
		$p->{w} = [ sort { $a->{rows}{$x}[0] <=> $b->{rows}{$x}[0] } @{ $p->{w} } ];
		for my $id ($x, $y) { $p->{$id} = [ map { $_->{rows}{$id}[0] } @{ $p->{w} } ]; }
	}
	# per row: versions in time order with their running maximum
	my (%ack_steps, %start_steps);
	for my $id (1 .. $NROWS)
	{
		$ack_steps{$id} = steps($acks{$id});
		$start_steps{$id} = steps($starts{$id});
	}
	my @gids = map { my $g = $_; [ grep { group_of($_) == $g } 1 .. $NROWS ] } 0 .. $NGROUPS - 1;
	# the same for sums over all rows and over each group
	my %sum_steps = (all => sum_steps(\%acks, [ 1 .. $NROWS ]));
	my %sum_start_steps = (all => sum_steps(\%starts, [ 1 .. $NROWS ]));
	for my $g (0 .. $NGROUPS - 1)
	{
		$sum_steps{$g} = sum_steps(\%acks, $gids[$g]);
		$sum_start_steps{$g} = sum_steps(\%starts, $gids[$g]);
	}
	# the least version of $id acknowledged at or before $t, the greatest whose commit started by $t
	my $lower = sub { my ($id, $t) = @_; return step_at($ack_steps{$id}, $t); };
	my $upper = sub { my ($id, $t) = @_; return step_at($start_steps{$id}, $t); };

	# read-your-writes: per connection, its tracked committed writes in order
	my %own;
	for my $w (sort { $a->{end} <=> $b->{end} } grep { $_->{op} eq 'w' && $_->{ryw} && $_->{status} eq 'commit' } @$hist)
	{
		push @{ $own{ $w->{conn} } }, $w;
	}

	for my $r (sort { $a->{start} <=> $b->{start} } grep { $_->{op} eq 'r' } @$hist)
	{
		my $label = sprintf('%s %s %s [%.3f, %.3f] %s', $r->{conn}, $r->{kind}, $r->{proto},
			$r->{start}, $r->{end}, $r->{sql});
		$stats{reads}{"$r->{kind}/$r->{proto}"}++;
		if ($r->{err})
		{
			push @viol, "$label: error $r->{err}";
			next;
		}
		# what the read must at least show, per row
		my $need_t = $r->{start} - $bound;
		my $ryw_w;
		for my $w (@{ $own{ $r->{conn} } // [] })
		{
			last if $w->{end} > $r->{start};
			$ryw_w = $w;
		}
		my $need = sub {
			my ($id) = @_;
			my $n = $lower->($id, $need_t);
			if ($ryw_w)
			{
				$n = max($n, $lower->($id, $ryw_w->{start}));
				$n = max($n, $ryw_w->{rows}{$id}[0]) if $ryw_w->{rows}{$id};
			}
			return $n;
		};
		my $check_row = sub {
			my ($id, $v, $tag) = @_;
			if (!defined $v || !defined $tag) { push @viol, "$label: row $id missing"; return; }
			my $w = $ver{"$id/$v/$tag"};
			if (!($v eq '0' && $tag eq 'init') && !$w)
			{
				push @viol, "$label: row $id shows v=$v tag=$tag, never committed";
				return;
			}
			if ($w && $w->{cstart} > $r->{end})
			{
				push @viol, sprintf('%s: row %d shows v=%s, committed by %s whose COMMIT was sent at %.3f, after the read',
					$label, $id, $v, $w->{conn}, $w->{cstart});
			}
			my $n = $need->($id);
			if ($v < $n)
			{
				my $wn = step_above($ack_steps{$id}, $v);
				push @viol, sprintf('%s: row %d shows v=%s, stale: v=%d was acknowledged at %.3f (%.3f s before the read; needed v>=%d%s)',
					$label, $id, $v, $wn->[1], $wn->[0], $r->{start} - $wn->[0], $n,
					$ryw_w ? sprintf('; own write %s [%.3f, %.3f]', $ryw_w->{rows}{$id} ? 'of this row' : 'of another row',
						$ryw_w->{start}, $ryw_w->{end}) : '');
			}
			note_staleness(\%stats, $r, $ack_steps{$id}, $v);
		};
		my $check_sum = sub {
			my ($what, $s, $set, @ids) = @_;
			if (!defined $s) { push @viol, "$label: no $what"; return; }
			my $lo = $ryw_w ? sum0(map { $need->($_) } @ids) : step_at($sum_steps{$set}, $need_t);
			my $hi = step_at($sum_start_steps{$set}, $r->{end});
			push @viol, "$label: $what = $s below $lo (the versions acknowledged before the bound)" if $s < $lo;
			push @viol, "$label: $what = $s above $hi (the versions whose commit was sent before the read ended)" if $s > $hi;
			note_staleness(\%stats, $r, $sum_steps{$set}, $s);
		};
		my @rows = @{ $r->{rows} };
		my $k = $r->{kind};
		if ($k eq 'point')
		{
			if (@rows != 1) { push @viol, "$label: " . scalar(@rows) . ' rows'; next; }
			$check_row->($r->{arg}, @{ $rows[0] });
		}
		elsif ($k eq 'multi')
		{
			my @ids = sort { $a <=> $b } @{ $r->{arg} };
			if (@rows != @ids) { push @viol, "$label: " . scalar(@rows) . ' rows'; next; }
			my %seen;
			for my $row (@rows)
			{
				$check_row->(@$row);
				$seen{ $row->[0] } = $row->[1];
			}
			# the two-row transactions of a pair lock both rows in the same order: their
			# versions grow together, so a snapshot sees as many of them on each row
			for my $i (0 .. $#ids)
			{
				for my $j ($i + 1 .. $#ids)
				{
					my ($x, $y) = @ids[ $i, $j ];
					my $ts = $pairs_of{"$x,$y"} or next;
					my $nx = count_le($ts->{$x}, $seen{$x});
					my $ny = count_le($ts->{$y}, $seen{$y});
					next if $nx == $ny;
					my $w = $ts->{w}[ min($nx, $ny) ];
					push @viol, "$label: shows half of transaction $w->{rows}{$x}[1] "
					  . "(row $x v=$seen{$x}, row $y v=$seen{$y})";
				}
			}
		}
		elsif ($k eq 'sum' || $k eq 'gsum')
		{
			my @ids = $k eq 'sum' ? (1 .. $NROWS) : @{ $gids[ $r->{arg} ] };
			if (@rows != 1) { push @viol, "$label: " . scalar(@rows) . ' rows'; next; }
			push @viol, "$label: count $rows[0][1], not " . scalar(@ids) if ($rows[0][1] // -1) != @ids;
			$check_sum->('sum(v)', $rows[0][0], $k eq 'sum' ? 'all' : $r->{arg}, @ids);
		}
		elsif ($k eq 'group')
		{
			if (@rows != 1) { push @viol, "$label: " . scalar(@rows) . ' rows'; next; }
			$check_sum->('total', $rows[0][0], $r->{arg}, @{ $gids[ $r->{arg} ] });
		}
		elsif ($k eq 'pred')
		{
			check_pred($kpm, $r, $label, $bound, $ryw_w, \@viol, \%stats);
		}
		elsif ($k eq 'join' || $k eq 'view')
		{
			if (@rows != 1) { push @viol, "$label: " . scalar(@rows) . ' rows'; next; }
			$check_row->($r->{arg}, @{ $rows[0] }[ 0, 1 ]);
			$check_sum->('group total', $rows[0][2], group_of($r->{arg}), @{ $gids[ group_of($r->{arg}) ] });
			# one snapshot: the total includes the row's own version
			my $max_total = $rows[0][0] + step_at($sum_start_steps{ group_of($r->{arg}) }, $r->{end})
			  - $upper->($r->{arg}, $r->{end});
			push @viol, "$label: group total $rows[0][2] above what v=$rows[0][0] allows ($max_total)"
			  if defined $rows[0][2] && $rows[0][2] > $max_total;
		}
		$stats{checked}++;
	}
	return { violations => \@viol, stats => \%stats };
}

# kp's model from the history: per id, its versions in order, each { v, grp
# (undef: absent), tag, cstart, end, w (the write), lo, hi, ender }, where
# [lo, hi] holds every moment at which it can have been the row's state: not
# before its own or an earlier version's COMMIT was sent, not after a later
# version (ender: the first of them) was acknowledged. Also: index
# ("id/v/tag" of a present version: its position), at ("id/v": the same for
# every version), acks (per id, a step function of time: the last position
# acknowledged by then), aborted ("id/v/tag" of rolled-back versions), txns
# (the committed writes of several rows, by end), problems (a history the
# model cannot hold: not the cache's fault, but the test's).
sub kp_model
{
	my ($hist, $init) = @_;
	my (%vers, %aborted, @txns, @problems);
	for my $id (keys %$init)
	{
		my ($v, $g, $tag) = @{ $init->{$id} };
		$vers{$id} = [ { v => $v, grp => $g, tag => $tag, cstart => -$INF, end => -$INF } ];
	}
	for my $w (grep { $_->{op} eq 'w' && ($_->{kp} || $_->{kp_aborted}) } @$hist)
	{
		for my $id (keys %{ $w->{kp_aborted} // {} })
		{
			my ($v, $g, $tag) = @{ $w->{kp_aborted}{$id} };
			$aborted{"$id/$v/$tag"} = $w;
		}
		next unless $w->{status} eq 'commit' || $w->{status} eq 'unknown';
		for my $id (keys %{ $w->{kp} // {} })
		{
			my ($v, $g, $tag) = @{ $w->{kp}{$id} };
			if (!$vers{$id}) { push @problems, "$w->{conn} wrote row $id, outside kp's ids"; next; }
			push @{ $vers{$id} }, { v => $v, grp => $g, tag => $tag, cstart => $w->{cstart},
				end => $w->{status} eq 'commit' ? $w->{end} : $INF, w => $w };
		}
		push @txns, $w if keys %{ $w->{kp} // {} } > 1;
	}
	my (%index, %at, %acks, %los, %his, %grps);
	for my $id (keys %vers)
	{
		my @l = sort { $a->{v} <=> $b->{v} } @{ $vers{$id} };
		for my $i (1 .. $#l)
		{
			push @problems, "row $id: version $l[$i]{v} follows $l[$i - 1]{v}" if $l[$i]{v} != $l[ $i - 1 ]{v} + 1;
		}
		my $lo = -$INF;
		for my $x (@l) { $lo = max($lo, $x->{cstart}); $x->{lo} = $lo; }
		my ($hi, $ender) = ($INF, undef);
		for my $i (reverse 0 .. $#l)
		{
			@{ $l[$i] }{qw(hi ender)} = ($hi, $ender);
			($hi, $ender) = ($l[$i]{end}, $l[$i]) if $l[$i]{end} <= $hi;
		}
		for my $i (0 .. $#l)
		{
			$at{"$id/$l[$i]{v}"} = $i;
			$index{"$id/$l[$i]{v}/$l[$i]{tag}"} = $i if defined $l[$i]{grp};
		}
		$acks{$id} = steps([ map { [ $l[$_]{end}, $_ ] } 0 .. $#l ]);
		$vers{$id} = \@l;
		# the same as plain arrays, for the binary searches of check_pred()
		$los{$id} = [ map { $_->{lo} } @l ];
		$his{$id} = [ map { $_->{hi} } @l ];
		$grps{$id} = [ map { $_->{grp} // 0 } @l ];
	}
	@txns = sort { $a->{end} <=> $b->{end} } @txns;
	my $longest = max(0, map { $_->{end} - $_->{cstart} } @txns);
	return { vers => \%vers, index => \%index, at => \%at, acks => \%acks, aborted => \%aborted,
		txns => \@txns, longest => $longest, problems => \@problems, ids => [ sort { $a <=> $b } keys %vers ],
		los => \%los, his => \%his, grps => \%grps };
}

# A read of kp's rows in the groups @{$r->{arg}}, against the model $m.
# Per id, its candidates: the versions that can be its state at a moment of
# [start - bound, end] (for a connection that wrote through the agent: not
# older than its own write, nor than what was acknowledged before that
# write started) and agree with the read: the version shown, or one outside
# the groups (absent, or in another group) if it is not shown. Then: every
# id has one; no two-row transaction is seen on one row and not on the other
# (every candidate of one after it, every candidate of the other before);
# and the candidates' moments share one.
sub check_pred
{
	my ($m, $r, $label, $bound, $ryw_w, $viol, $stats) = @_;
	my %in = map { $_ => 1 } @{ $r->{arg} };
	my ($w0, $w1) = ($r->{start} - $bound, $r->{end});
	my $n_viol = @$viol;
	my %shown;
	for my $row (@{ $r->{rows} })
	{
		my ($id, $v, $tag) = map { $_ // 'NULL' } @$row;
		if (!$m->{vers}{$id}) { push @$viol, "$label: row $id, not one of kp's ids"; next; }
		if ($shown{$id}) { push @$viol, "$label: row $id twice"; next; }
		$shown{$id} = [ $v, $tag ];
	}
	my $own_note = sub {
		my ($id) = @_;
		return '' unless $ryw_w;
		return sprintf('; own write of %s [%.3f, %.3f]', $ryw_w->{kp} && $ryw_w->{kp}{$id} ? 'this row' : 'another row',
			$ryw_w->{start}, $ryw_w->{end});
	};
	my $ago = sub {
		my ($id, $y) = @_;
		return sprintf(', acknowledged at %.3f (%.3f s before the read%s)', $y->{end}, $r->{start} - $y->{end},
			$own_note->($id));
	};
	my %cand;
	for my $id (@{ $m->{ids} })
	{
		my $l = $m->{vers}{$id};
		my $need = 0;
		if ($ryw_w)
		{
			$need = step_at($m->{acks}{$id}, $ryw_w->{start});
			my $o = $ryw_w->{kp} && $ryw_w->{kp}{$id};
			$need = max($need, $m->{at}{"$id/$o->[0]"} // 0) if $o;
		}
		# the versions whose moments meet [w0, w1] (lo and hi ascend): from
		# the first with hi >= w0 to the last with lo <= w1
		my ($his, $los) = ($m->{his}{$id}, $m->{los}{$id});
		my ($a0, $a1) = (0, scalar @$his);
		while ($a0 < $a1)
		{
			my $mid = ($a0 + $a1) >> 1;
			if ($his->[$mid] < $w0) { $a0 = $mid + 1; } else { $a1 = $mid; }
		}
		my $first = $a0 > $need ? $a0 : $need;
		$a1 = scalar @$los;
		while ($a0 < $a1)
		{
			my $mid = ($a0 + $a1) >> 1;
			if ($los->[$mid] <= $w1) { $a0 = $mid + 1; } else { $a1 = $mid; }
		}
		my $last = $a0 - 1;
		if (my $s = $shown{$id})
		{
			my ($v, $tag) = @$s;
			my $i = $m->{index}{"$id/$v/$tag"};
			if (!defined $i)
			{
				my $a = $m->{aborted}{"$id/$v/$tag"};
				push @$viol, "$label: row $id shows v=$v tag=$tag, never committed" . ($a ? " (rolled back by $a->{conn})" : '');
				next;
			}
			my $x = $l->[$i];
			if (!$in{ $x->{grp} })
			{
				push @$viol, "$label: row $id shows v=$v tag=$tag, a version in grp $x->{grp}, outside the read's groups";
				next;
			}
			if ($i > $last)
			{
				my ($late) = grep { $_->{cstart} > $w1 } @$l[ 0 .. $i ];
				push @$viol, sprintf('%s: row %d shows v=%s, committed by %s whose COMMIT was sent at %.3f, after the read',
					$label, $id, $v, $late->{w}{conn}, $late->{cstart});
				next;
			}
			if ($i < $first)
			{
				my $y = $x->{hi} < $w0 ? $x->{ender} : $l->[$need];
				my $what = !defined $y->{grp} ? "shown in grp $x->{grp} after its deletion: v=$y->{v} deleted it"
				  : !$in{ $y->{grp} } ? "shown in grp $x->{grp}, which it had left: v=$y->{v} moved it to grp $y->{grp}"
				  : "shows v=$v in grp $x->{grp}, stale: v=$y->{v} is in grp $y->{grp}";
				push @$viol, "$label: row $id $what" . $ago->($id, $y);
				next;
			}
			my $st = $x->{hi} < $r->{start} ? $r->{start} - $x->{hi} : 0;
			my $k = "pred/$r->{proto}";
			$stats->{max_stale}{$k} = $st if $st > ($stats->{max_stale}{$k} // 0);
			$cand{$id} = [$i];
		}
		else
		{
			my $grps = $m->{grps}{$id};
			my @c = grep { !$in{ $grps->[$_] } } $first .. $last;
			if (!@c)
			{
				# its state at w0, or after the own write: in a group read
				my $x = $l->[ max($need, step_at($m->{acks}{$id}, $w0)) ];
				push @$viol, "$label: row $id missing from grp "
				  . ($x->{grp} // '?') . ($x->{w} ? ": v=$x->{v} tag=$x->{tag} put it there" . $ago->($id, $x)
					: ", in it since the start (v=$x->{v} tag=$x->{tag})");
				next;
			}
			$cand{$id} = \@c;
		}
	}
	return if @$viol > $n_viol;		# the checks below would only say it again

	# half of a transaction: only those acknowledged after w0 and sent before
	# w1 can be (a candidate after it has lo >= its cstart, one before it hi <= its end)
	my $txns = $m->{txns};
	for my $n (count_prefix($txns, sub { $_[0]{end} < $w0 }) .. $#$txns)
	{
		my $t = $txns->[$n];
		last if $t->{end} > $w1 + $m->{longest};
		next if $t->{cstart} > $w1;
		my %side;
		for my $id (keys %{ $t->{kp} })
		{
			my $k = $m->{at}{"$id/$t->{kp}{$id}[0]"};
			my $c = $cand{$id};
			$side{$id} = $c->[0] >= $k ? 'after' : $c->[-1] < $k ? 'before' : 'either';
		}
		my @after = sort { $a <=> $b } grep { $side{$_} eq 'after' } keys %side;
		my @before = sort { $a <=> $b } grep { $side{$_} eq 'before' } keys %side;
		next unless @after && @before;
		my $tag = (values %{ $t->{kp} })[0][2];
		push @$viol, "$label: shows half of transaction $tag (row @after after it, row @before before it)";
	}
	return if @$viol > $n_viol;

	# one moment: the intersection of every id's candidate moments
	my @common = ([ $w0, $w1 ]);
	for my $id (@{ $m->{ids} })
	{
		my ($his, $los) = ($m->{his}{$id}, $m->{los}{$id});
		my @mine = map { [ $los->[$_] > $w0 ? $los->[$_] : $w0, $his->[$_] < $w1 ? $his->[$_] : $w1 ] } @{ $cand{$id} };
		if (@common == 1 && @mine == 1)
		{
			my ($a0, $a1) = (max($common[0][0], $mine[0][0]), min($common[0][1], $mine[0][1]));
			if ($a0 <= $a1) { @common = ([ $a0, $a1 ]); next; }
		}
		my @next;
		for my $p (@common)
		{
			for my $q (@mine)
			{
				my ($a0, $a1) = (max($p->[0], $q->[0]), min($p->[1], $q->[1]));
				push @next, [ $a0, $a1 ] if $a0 <= $a1;
			}
		}
		@next = merge_intervals(@next) if @next > 1;
		if (!@next)
		{
			my $fmt = sub { join(' ', map { sprintf('[%.3f, %.3f]', @$_) } @_) };
			push @$viol, "$label: no moment shows all these rows: row $id only at " . $fmt->(@mine)
			  . ', the rows before it only at ' . $fmt->(@common);
			return;
		}
		@common = @next;
	}
	return;
}

# [[t, v], ...] sorted by t with v replaced by the running maximum
sub steps
{
	my ($list) = @_;
	my @s = sort { $a->[0] <=> $b->[0] } @{ $list // [] };
	my $m = 0;
	return [ map { $m = max($m, $_->[1]); [ $_->[0], $m ] } @s ];
}

# how many leading elements of @$list have $key->(element) <= $v (the keys
# ascend): a binary search
sub count_keys_le
{
	my ($list, $v, $key) = @_;
	my ($lo, $hi) = (0, scalar @$list);
	while ($lo < $hi)
	{
		my $mid = int(($lo + $hi) / 2);
		if ($key->($list->[$mid]) <= $v) { $lo = $mid + 1; } else { $hi = $mid; }
	}
	return $lo;
}

# how many leading elements of @$list satisfy $pred (true for a prefix of
# it): a binary search
sub count_prefix
{
	my ($list, $pred) = @_;
	my ($lo, $hi) = (0, scalar @$list);
	while ($lo < $hi)
	{
		my $mid = int(($lo + $hi) / 2);
		if ($pred->($list->[$mid])) { $lo = $mid + 1; } else { $hi = $mid; }
	}
	return $lo;
}

# closed intervals [a, b], sorted and joined where they meet
sub merge_intervals
{
	my @out;
	for my $p (sort { $a->[0] <=> $b->[0] } @_)
	{
		if (@out && $p->[0] <= $out[-1][1]) { $out[-1][1] = max($out[-1][1], $p->[1]); }
		else { push @out, [@$p]; }
	}
	return @out;
}

# how many of the ascending @$list are <= $v
sub count_le
{
	my ($list, $v) = @_;
	return count_keys_le($list, $v, sub { $_[0] });
}

# the value of a step function at $t (0 before its first step)
sub step_at
{
	my ($s, $t) = @_;
	my $n = count_keys_le($s, $t, sub { $_[0][0] });
	return $n ? $s->[ $n - 1 ][1] : 0;
}

# the first step whose value exceeds $v: [t, value] or undef
sub step_above
{
	my ($s, $v) = @_;
	my $n = count_keys_le($s, $v, sub { $_[0][1] });
	return $n < @$s ? $s->[$n] : undef;
}

# the sum over @$ids of each row's greatest acknowledged version, as a step function of time
sub sum_steps
{
	my ($acks, $ids) = @_;
	my @ev = sort { $a->[0] <=> $b->[0] }
	  map { my $id = $_; map { [ $_->[0], $id, $_->[1] ] } @{ $acks->{$id} // [] } } @$ids;
	my (%cur, @s);
	my $tot = 0;
	for my $e (@ev)
	{
		my ($t, $id, $v) = @$e;
		if ($v > ($cur{$id} // 0)) { $tot += $v - ($cur{$id} // 0); $cur{$id} = $v; }
		push @s, [ $t, $tot ];
	}
	return \@s;
}

# staleness: how long before the read started a value greater than the one it
# showed was acknowledged (0 if none was)
sub note_staleness
{
	my ($stats, $r, $steps, $v) = @_;
	my $f = step_above($steps, $v);
	my $st = $f && $f->[0] < $r->{start} ? $r->{start} - $f->[0] : 0;
	my $k = "$r->{kind}/$r->{proto}";
	$stats->{max_stale}{$k} = $st if $st > ($stats->{max_stale}{$k} // 0);
	return $f;
}

1;
