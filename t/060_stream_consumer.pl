# The agent's change stream consumer (agent/stream/stream.c), through
# `hyperdrive stream-watch`, against a real origin.
#
# Covers: records of inserts, updates and DDL in commit order; --count;
# confirmation (the slot's confirmed_flush_lsn is the end LSN of the last
# record printed, and a second run prints only new records); --text is the
# plugin's text format byte for byte; kill -9 mid-stream re-sends what was not
# confirmed (at-least-once); the origin restarting (reconnect with backoff);
# the slot dropped by hand while the watcher is disconnected (slot_lost, slot
# created again); the slot invalidated by max_slot_wal_keep_size (slot_lost,
# dropped, created again); keepalive replies keep a walsender with
# wal_sender_timeout = 2s from timing out; command-line errors.
#
# Needs agent/hyperdrive (make agent) and the extension installed in the
# server that PATH's initdb/postgres belong to. Run from the repository root
# with prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl t/060_stream_consumer.pl
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;

my $hd = $HD;
# e.g. HD_STREAM_WRAPPER='valgrind -q --error-exitcode=99'
my @wrapper = split ' ', ($ENV{HD_STREAM_WRAPPER} // '');

my $PW = 'stream-Secret-9';
my $SLOT = 'hyperdrive_app';

# ---------------------------------------------------------------------------
# The origin: role app (REPLICATION, SCRAM over TCP) owning database app.
# logical replication connections match the database name, not "replication"
my $node = start_origin('origin', logical => 1,
	conf => "autovacuum = off\nmax_wal_senders = 10\nmax_replication_slots = 10\n",
	hba => "local all all trust\nhost app app 127.0.0.1/32 scram-sha-256\n");
my $oport = $node->port;
$node->safe_psql('postgres', "CREATE ROLE app LOGIN REPLICATION PASSWORD '$PW'");
$node->safe_psql('postgres', 'CREATE DATABASE app OWNER app');
$node->safe_psql('app', 'CREATE EXTENSION hyperdrive');
$node->safe_psql('app', <<'SQL');
CREATE TABLE items (id int PRIMARY KEY, name text);
ALTER TABLE items OWNER TO app;
SQL

sub app_sql { return $node->safe_psql('app', $_[0]); }

# ---------------------------------------------------------------------------
# Agent settings and the config.
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('hd_stream'));
my $ini = "$tmp/hyperdrive.ini";
{
	open my $fh, '>', $ini or die "$ini: $!";
	print $fh "[agent]\nstate_dir = $tmp/state\nlog_level = info\nserver_connect_timeout = 2\n";
	close $fh;
}
{
	my ($in, $out, $err) = ('', '', '');
	IPC::Run::run([ $hd, 'create', 'app',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '-c', $ini ],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	is($?, 0, 'config app created') or diag($err);
}

# ---------------------------------------------------------------------------
# Watchers.

# Starts stream-watch app with @args in the background.
sub watch_start
{
	my (@args) = @_;
	my $w = { out => '', err => '', args => "@args" };
	$w->{h} = IPC::Run::start([ @wrapper, $hd, 'stream-watch', 'app', '-c', $ini, @args ],
		'<', \undef, '>', \$w->{out}, '2>', \$w->{err}, IPC::Run::timeout(300));
	return $w;
}

# Pumps until $w->{$what} matches $re (true), the watcher exits or $timeout s pass.
sub watch_until
{
	my ($w, $what, $re, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline)
	{
		$w->{h}->pump_nb if $w->{h}->pumpable;
		return 1 if $w->{$what} =~ $re;
		last unless $w->{h}->pumpable;
		sleep 0.05;
	}
	return $w->{$what} =~ $re;
}

# Number of "connected" state lines so far.
sub connects { my ($w) = @_; my @c = $w->{err} =~ /^stream-watch: connected:/mg; return scalar @c; }

# Waits for the watcher to exit by itself; returns its exit status.
sub watch_finish
{
	my ($w, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while ($w->{h}->pumpable && time < $deadline)
	{
		$w->{h}->pump_nb;
		sleep 0.05;
	}
	if ($w->{h}->pumpable)
	{
		diag("watcher ($w->{args}) did not exit; killing it");
		$w->{h}->kill_kill;
	}
	$w->{h}->finish;
	note("stream-watch $w->{args}: stderr:\n$w->{err}");
	return $w->{h}->full_result(0);
}

sub watch_interrupt
{
	my ($w) = @_;
	$w->{h}->signal('INT');
	return watch_finish($w, 15);
}

# The records printed so far (default format: blocks ending with an empty line).
sub records
{
	my ($w) = @_;
	my @r;
	for my $block (split /\n\n/, $w->{out})
	{
		next unless $block =~ /^hyperdrive \d+ xid (\d+) commit_lsn (\S+) end_lsn (\S+)/;
		push @r, { xid => $1, commit_lsn => $2, end_lsn => $3, text => $block };
	}
	return @r;
}

sub nrecords { my @r = records($_[0]); return scalar @r; }

sub lsn_num
{
	my ($hi, $lo) = split m{/}, $_[0];
	return hex($hi) * 2**32 + hex($lo);
}

sub slot_row
{
	my ($slot) = @_;
	return $node->safe_psql('postgres',
		"SELECT active, confirmed_flush_lsn, coalesce(wal_status, '') FROM pg_replication_slots "
		  . "WHERE slot_name = '" . ($slot // $SLOT) . "'");
}

# Waits until the slot is inactive (the walsender has exited); returns its row.
sub slot_inactive
{
	my ($slot) = @_;
	my $deadline = time + 20;
	my $row = slot_row($slot);
	while ($row =~ /^t\|/ && time < $deadline)
	{
		sleep 0.1;
		$row = slot_row($slot);
	}
	return $row;
}

sub slot_confirmed { my (undef, $c) = split /\|/, slot_inactive($_[0]); return $c; }

# ---------------------------------------------------------------------------
# Command-line errors.
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $hd, 'stream-watch', 'nosuch', '-c', $ini ], '<', \undef, '>', \$out,
		'2>', \$err, IPC::Run::timeout(30));
	is($? >> 8, 1, 'unknown config: exit 1');
	like($err, qr/no config "nosuch"/, 'unknown config: says so');
	IPC::Run::run([ $hd, 'stream-watch', 'app', '-c', $ini, '--slot', 'Bad-Name' ], '<', \undef,
		'>', \$out, '2>', \$err, IPC::Run::timeout(30));
	is($? >> 8, 1, 'bad --slot: exit 1');
	like($err, qr/--slot: .*lower case letters/, 'bad --slot: says why');
	IPC::Run::run([ $hd, 'stream-watch', 'app', '-c', $ini, '--from-lsn', 'zz' ], '<', \undef,
		'>', \$out, '2>', \$err, IPC::Run::timeout(30));
	is($? >> 8, 1, 'bad --from-lsn: exit 1');
	IPC::Run::run([ $hd, 'stream-watch', '--help' ], '>', \$out, '2>', \$err);
	like($out, qr/--count N/, 'stream-watch --help');
	IPC::Run::run([ $hd, '--help' ], '>', \$out, '2>', \$err);
	like($out, qr/stream-watch NAME/, 'hyperdrive --help lists stream-watch');
}

# ---------------------------------------------------------------------------
# First run: the slot is created; inserts, updates and DDL in commit order;
# --count 3 stops it after the third record.
my $w = watch_start('--count', '3');
ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), 'first run: connected')
  or diag($w->{err});
like(slot_row(), qr/^t\|/, 'first run: the slot was created and is active');
app_sql(q{INSERT INTO items VALUES (1, 'one'), (2, 'two')});
app_sql(q{UPDATE items SET name = 'uno' WHERE id = 1});
app_sql(q{ALTER TABLE items ADD COLUMN price numeric});
app_sql(q{INSERT INTO items VALUES (3, 'three')});	# the 4th: not printed
is(watch_finish($w), 0, '--count 3: exits 0 by itself');
my @r = records($w);
is(scalar @r, 3, '--count 3: three records') or diag($w->{out});
like($r[0]{text}, qr/^relation public\.items oid \d+ changes insert key \(id\) rows \('1'\) \('2'\)$/m,
	'record 1: the insert');
like($r[1]{text}, qr/^relation public\.items oid \d+ changes update key \(id\) rows \('1'\)$/m,
	'record 2: the update');
like($r[2]{text}, qr/changes ddl rows all \(ddl\).*^ddl ALTER TABLE table public\.items$/ms,
	'record 3: the DDL');
ok(lsn_num($r[0]{end_lsn}) < lsn_num($r[1]{end_lsn})
	  && lsn_num($r[1]{end_lsn}) < lsn_num($r[2]{end_lsn})
	  && $r[0]{xid} < $r[1]{xid} && $r[1]{xid} < $r[2]{xid},
	'records in commit order');
like($w->{err}, qr/stopped after 3 records; confirmed up to \Q$r[2]{end_lsn}\E/,
	'says what it confirmed');
is(slot_confirmed(), $r[2]{end_lsn}, "confirmed_flush_lsn is the last record's end LSN");

# Second run: only what is new.
$w = watch_start('--count', '1');
is(watch_finish($w), 0, 'second run: exits after one record');
my @r2 = records($w);
is(scalar @r2, 1, 'second run: one record');
like($r2[0]{text}, qr/rows \('3'\)$/m, 'second run: the 4th transaction, nothing re-sent');
ok(lsn_num($r2[0]{commit_lsn}) > lsn_num($r[2]{end_lsn}), 'second run: after the confirmed LSN');
is(slot_confirmed(), $r2[0]{end_lsn}, 'second run: confirmed its record');
my $confirmed = $r2[0]{end_lsn};

# A start LSN older than what the slot confirmed: the changes in between are
# gone for this consumer (slot_lost); it goes on from confirmed_flush_lsn.
{
	app_sql(q{INSERT INTO items VALUES (5, 'five')});
	my $gw = watch_start('--from-lsn', '0/1', '--count', '1');
	is(watch_finish($gw), 0, 'old start LSN: exits after one record');
	like($gw->{err},
		qr/^stream-watch: slot_lost: replication slot $SLOT has confirmed up to \Q$confirmed\E, past this consumer's position 0\/1/m,
		'old start LSN: slot_lost, saying why');
	unlike($gw->{err}, qr/created replication slot/, 'old start LSN: the slot is kept');
	my @g = records($gw);
	like($g[0]{text}, qr/rows \('5'\)$/m, 'old start LSN: streams from confirmed_flush_lsn');
	$confirmed = $g[0]{end_lsn};
}

# ---------------------------------------------------------------------------
# --text is the plugin's text format byte for byte (two slots at the same point).
{
	app_sql(q{SELECT pg_create_logical_replication_slot('hd_text', 'hyperdrive'),
	                 pg_create_logical_replication_slot('hd_sql', 'hyperdrive')});
	app_sql(q{INSERT INTO items VALUES (4, E'it''s\nnew', 4.5)});
	app_sql(q{BEGIN; DELETE FROM items WHERE id = 2; GRANT SELECT ON items TO PUBLIC; COMMIT});
	my $tw = watch_start('--slot', 'hd_text', '--text', '--count', '2');
	is(watch_finish($tw), 0, '--text: exits after two records');
	my $expected = app_sql(q{SELECT string_agg(data || E'\n', '' ORDER BY ord) FROM
		(SELECT data, row_number() OVER () AS ord
		 FROM pg_logical_slot_get_changes('hd_sql', NULL, NULL, 'format', 'text')) c});
	# (each record's text ends with a newline, as pg_recvlogical writes them)
	is($tw->{out}, $expected, '--text: identical to pg_logical_slot_get_changes text');
	app_sql(q{SELECT pg_drop_replication_slot('hd_text'), pg_drop_replication_slot('hd_sql')});
	# the main slot sees them too; read past them
	$w = watch_start('--count', '2');
	is(watch_finish($w), 0, 'main slot: read past the two transactions');
	$confirmed = (records($w))[-1]{end_lsn};
}

# ---------------------------------------------------------------------------
# kill -9 mid-stream: what was printed but not confirmed is sent again.
# --status-interval 3600: only keepalives asking for a reply confirm anything
# (every 30 s with the default wal_sender_timeout).
$w = watch_start('--status-interval', '3600');
ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), 'kill -9: connected');
app_sql(qq{INSERT INTO items VALUES ($_, 'k$_')}) for 10 .. 12;
ok(watch_until($w, 'out', qr/rows \('12'\)$/m), 'kill -9: three records printed');
$w->{h}->signal('KILL');
$w->{h}->finish;
my @killed = records($w);
is(scalar @killed, 3, 'kill -9: three records before the kill');
is(slot_confirmed(), $confirmed, 'kill -9: none of them was confirmed');
$w = watch_start('--count', '3');
is(watch_finish($w), 0, 'after kill -9: exits after three records');
my @again = records($w);
is_deeply([ map { "$_->{xid} $_->{end_lsn}" } @again ],
	[ map { "$_->{xid} $_->{end_lsn}" } @killed ],
	'after kill -9: the unconfirmed records are sent again, in order');
is(slot_confirmed(), $again[-1]{end_lsn}, 'after kill -9: now confirmed');

# ---------------------------------------------------------------------------
# The origin restarts while watching: it reconnects and goes on.
$w = watch_start();
ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), 'restart: connected');
app_sql(q{INSERT INTO items VALUES (20, 'before restart')});
ok(watch_until($w, 'out', qr/rows \('20'\)$/m), 'restart: record before the restart');
my $t0 = time;
$node->restart;
ok(time - $t0 < 30, 'restart: the server shut down promptly (the walsender was answered)');
ok(watch_until($w, 'err', qr/^stream-watch: disconnected:/m), 'restart: disconnected reported');
like($w->{err}, qr/WARNING: change stream of config "app" \(slot $SLOT\): the server ended the stream/,
	'restart: the first failure is a WARNING in the log');
ok(watch_until($w, 'err', qr/(?:^stream-watch: connected:.*){2}/ms, 40), 'restart: reconnected')
  or diag($w->{err});
app_sql(q{INSERT INTO items VALUES (21, 'after restart')});
ok(watch_until($w, 'out', qr/rows \('21'\)$/m), 'restart: record after the restart');
{
	my @all = records($w);
	my %seen;
	$seen{"$_->{xid}"}++ for @all;
	is(scalar(grep { $_ > 1 } values %seen), 0, 'restart: nothing printed twice');
}

# A longer outage: failed attempts are reported, spaced by a growing backoff
# (1 s, then 2 s), and logged loudly only once.
{
	my $n = connects($w);
	my $errpos = length $w->{err};
	$node->stop;
	my @at;
	my $deadline = time + 20;
	while (@at < 2 && time < $deadline)
	{
		$w->{h}->pump_nb;
		my @e = substr($w->{err}, $errpos) =~ /^stream-watch: error: /mg;
		push @at, time while @at < @e;
		sleep 0.05;
	}
	is(scalar @at, 2, 'outage: two failed attempts reported') or diag($w->{err});
	like(substr($w->{err}, $errpos), qr/^stream-watch: error: cannot connect: .*refused/m,
		'outage: says why');
	ok(@at == 2 && $at[1] - $at[0] > 1.5, 'outage: the second wait is longer (backoff)')
	  or diag("gap: " . ($at[1] // 0) - ($at[0] // 0));
	# the restart's failure (less than 10 s of streaming ago) began the episode
	my @loud = substr($w->{err}, $errpos) =~ /WARNING: change stream/g;
	ok(@loud <= 1, 'outage: not a WARNING per attempt');
	$node->start;
	ok(watch_until($w, 'err', qr/(?:^stream-watch: connected:.*){@{[ $n + 1 ]}}/ms, 30),
		'outage: streaming again once the origin is back') or diag($w->{err});
	app_sql(q{INSERT INTO items VALUES (26, 'after outage')});
	ok(watch_until($w, 'out', qr/rows \('26'\)$/m), 'outage: records flow again');
}

# ---------------------------------------------------------------------------
is(watch_interrupt($w), 0, 'outage: SIGINT exits 0');

# The slot is dropped by hand while the watcher is disconnected: slot_lost,
# and a new slot. (A fresh watcher: the last one's backoff has grown.)
$w = watch_start();
ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), 'dropped slot: connected');
{
	my $n = connects($w);
	$node->safe_psql('postgres', qq{
		SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots
		 WHERE slot_name = '$SLOT';
		SELECT pg_drop_replication_slot('$SLOT');});
	ok(watch_until($w, 'err', qr/^stream-watch: slot_lost: replication slot $SLOT does not exist/m),
		'dropped slot: slot_lost reported') or diag($w->{err});
	ok(watch_until($w, 'err', qr/(?:^stream-watch: connected:.*){@{[ $n + 1 ]}}/ms, 40),
		'dropped slot: streaming again');
	like(slot_row(), qr/^t\|/, 'dropped slot: created again');
	app_sql(q{INSERT INTO items VALUES (22, 'new slot')});
	ok(watch_until($w, 'out', qr/rows \('22'\)$/m), 'dropped slot: records flow again');
}
my ($status) = watch_interrupt($w);
is($status, 0, 'SIGINT: exits 0');
like($w->{err}, qr/stopped after \d+ records; confirmed up to/, 'SIGINT: says where it stopped');
is(slot_confirmed(), (records($w))[-1]{end_lsn}, 'SIGINT: confirmed the last record');

# A record the consumer cannot apply (stdout is /dev/full: printing fails) is
# not confirmed: the consumer reconnects and gets it again.
{
	my $before = slot_confirmed();
	app_sql(q{INSERT INTO items VALUES (30, 'unprintable')});
	my $fw = { out => '', err => '', args => '> /dev/full' };
	$fw->{h} = IPC::Run::start([ @wrapper, $hd, 'stream-watch', 'app', '-c', $ini ],
		'<', \undef, '>', '/dev/full', '2>', \$fw->{err}, IPC::Run::timeout(300));
	ok(watch_until($fw, 'err',
			qr/(?:^stream-watch: disconnected: the record ending at \S+ was not applied.*){2}/ms, 20),
		'not applied: reconnects, and the record comes again') or diag($fw->{err});
	is(watch_interrupt($fw), 0, 'not applied: SIGINT exits 0');
	is(slot_confirmed(), $before, 'not applied: nothing confirmed');
}

# ---------------------------------------------------------------------------
# max_slot_wal_keep_size: the slot loses its WAL while nobody watches.
{
	app_sql(q{ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; SELECT pg_reload_conf();});
	my $lost = 0;
	for my $i (1 .. 10)
	{
		app_sql(qq{INSERT INTO items SELECT g, 'bulk' FROM generate_series(1000 * $i, 1000 * $i + 999) g;
		           SELECT pg_switch_wal();});
		app_sql(q{INSERT INTO items VALUES (-1, 'x'); DELETE FROM items WHERE id = -1;
		          SELECT pg_switch_wal(); CHECKPOINT;});
		my (undef, undef, $ws) = split /\|/, slot_row();
		if ($ws eq 'lost') { $lost = 1; last; }
	}
	ok($lost, 'max_slot_wal_keep_size: the slot is lost') or diag(slot_row());
	$w = watch_start();
	ok(watch_until($w, 'err', qr/^stream-watch: slot_lost: .*wal_status lost/m),
		'lost slot: slot_lost reported') or diag($w->{err});
	ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), 'lost slot: streaming again');
	my (undef, undef, $ws) = split /\|/, slot_row();
	isnt($ws, 'lost', 'lost slot: a fresh slot');
	app_sql(q{INSERT INTO items VALUES (23, 'after loss')});
	ok(watch_until($w, 'out', qr/rows \('23'\)$/m), 'lost slot: records flow again');
	is(watch_interrupt($w), 0, 'lost slot: SIGINT exits 0');
	app_sql(q{ALTER SYSTEM RESET max_slot_wal_keep_size; SELECT pg_reload_conf();});
}

# ---------------------------------------------------------------------------
# wal_sender_timeout = 2s and 6 s without traffic: still connected. Once with
# the periodic status updates, once with only the replies to keepalives that
# ask for one.
app_sql(q{ALTER SYSTEM SET wal_sender_timeout = '2s'; SELECT pg_reload_conf();});
for my $args ([], [ '--status-interval', '3600' ])
{
	my $label = @$args ? 'replies only' : 'periodic updates';
	$w = watch_start(@$args);
	ok(watch_until($w, 'err', qr/^stream-watch: connected:/m), "keepalive ($label): connected");
	my $pid = $node->safe_psql('postgres',
		"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$SLOT'");
	my $until = time + 6;
	$w->{h}->pump_nb, sleep 0.2 while time < $until;
	is($node->safe_psql('postgres',
			"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$SLOT'"),
		$pid, "keepalive ($label): the same walsender after 6 s");
	unlike($w->{err}, qr/disconnected|error:/, "keepalive ($label): never disconnected")
	  or diag($w->{err});
	app_sql(qq{INSERT INTO items VALUES (@{[ @$args ? 25 : 24 ]}, 'late')});
	ok(watch_until($w, 'out', qr/rows \('2[45]'\)$/m), "keepalive ($label): still streaming");
	is(watch_interrupt($w), 0, "keepalive ($label): SIGINT exits 0");
}

$node->stop;
done_testing();
