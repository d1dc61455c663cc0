# The result cache and DDL that does not name the relations a cached entry
# read (docs/cache.md, "The change stream"): a table created ahead of the
# one a query read on its search_path, an enum value renamed, an IMMUTABLE
# function replaced. Each must be seen within max_lag, whatever the entry's
# max age; DDL on the short harmless list (CREATE/DROP INDEX, COMMENT) keeps
# the entries.
#
# Needs agent/hyperdrive (make agent) and the extension installed.
use strict;
use warnings;

use File::Basename qw(dirname);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use CacheHarness;

CacheHarness::setup(tag => '076_cache_ddl', node => 'origin', extra_sql => <<'SQL');
SET ROLE app;
CREATE SCHEMA ho_c;
CREATE TABLE public.sp (v text);
INSERT INTO public.sp VALUES ('public.sp');
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE moods (id int PRIMARY KEY, m mood);
INSERT INTO moods VALUES (1, 'happy');
CREATE FUNCTION label(int) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT 'v1:' || $1 $$;
CREATE VIEW labelled AS SELECT id, label(id) AS l FROM items;
SQL
ok(start_agent(), 'the agent listens');
ok(stream_ready(),
	'the config\'s change stream connects');

# A slot of our own shows what the stream says about each DDL (text format).
$node->safe_psql('app', "SELECT pg_create_logical_replication_slot('ddl_watch', 'hyperdrive')");
sub stream_text
{
	return $node->safe_psql('app', "SELECT coalesce(string_agg(data, E'\\n'), '') FROM "
		  . "pg_logical_slot_get_changes('ddl_watch', NULL, NULL, 'format', 'text')");
}

sub lsn_value { my ($l) = @_; my ($hi, $lo) = split m{/}, $l; return hex($hi) * 2**32 + hex($lo); }

# The stream of config app has applied everything the origin wrote so far.
sub stream_caught_up
{
	my $target = lsn_value($node->safe_psql('app', 'SELECT pg_current_wal_insert_lsn()'));
	return wait_for(sub { lsn_value(cache_status()->{applied_lsn} || '0/0') >= $target }, 10);
}

# What a read through config app returns; $o{pre}: statements before it in
# the same session (a SET, carried by the agent).
sub read_app
{
	my (%o) = @_;
	my $r = q_agent(sql => [ @{ $o{pre} // [] }, $o{read} ]);
	chomp $r;
	return $r;
}

# A read cached (a hit after at most a miss), then DDL on the origin: the
# next reads must show the new result within the bound.
sub sees_ddl
{
	my ($name, %o) = @_;
	my $r;
	ok(wait_for(sub {
		my $h0 = cache_status()->{hits};
		$r = read_app(%o);
		return cache_status()->{hits} > $h0;
	}, 10), "$name: the read is cached");
	is($r, $o{before}, "$name: as the origin says");
	stream_text();		# what came before
	my $d0 = cache_status()->{ddl_invalidations} // 0;
	$node->safe_psql('app', "SET ROLE app; $o{ddl}");
	my $got = '';
	ok(wait_for(sub { $got = read_app(%o); $got eq $o{after} }, 5),
		"$name: the next read shows the new result within the bound")
	  or diag("got <$got>, expected <$o{after}>");
	my $stale = 0;
	for (1 .. 3) { $stale++ if read_app(%o) ne $o{after}; }
	is($stale, 0, "$name: never the old result again");
	like(stream_text(), $o{stream}, "$name: the stream carries the DDL object");
	ok((cache_status()->{ddl_invalidations} // 0) > $d0,
		"$name: SHOW CACHE counts it in ddl_invalidations");
	return;
}

# search_path ho_c, public: "sp" is public.sp until ho_c.sp exists.
sees_ddl('a table created ahead on the search_path',
	pre => ['SET search_path = ho_c, public'],
	read => 'SELECT v FROM sp',
	before => 'public.sp',
	ddl => "CREATE TABLE ho_c.sp (v text); INSERT INTO ho_c.sp VALUES ('ho_c.sp')",
	after => 'ho_c.sp',
	stream => qr/^ddl CREATE TABLE table ho_c\.sp$/m);

# a hint's long max age changes nothing
sees_ddl('ALTER TYPE ... RENAME VALUE',
	read => 'SELECT m FROM moods WHERE id = 1 /* hyperdrive: max-age=3600 */',
	before => 'happy',
	ddl => "ALTER TYPE mood RENAME VALUE 'happy' TO 'glad'",
	after => 'glad',
	stream => qr/^ddl ALTER TYPE type public\.mood$/m);

# the view calls the function; so does a query directly (cached before the DDL)
is(warm('SELECT label(id) FROM items WHERE id = 2'), 'v1:2', 'a query calling label() is cached');
sees_ddl('CREATE OR REPLACE FUNCTION (IMMUTABLE, called by a view)',
	read => 'SELECT l FROM labelled WHERE id = 1',
	before => 'v1:1',
	ddl => q{CREATE OR REPLACE FUNCTION label(int) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT 'v2:' || $1 $$},
	after => 'v2:1',
	stream => qr/^ddl CREATE FUNCTION function public\.label\(integer\)$/m);
is(sel('SELECT label(id) FROM items WHERE id = 2'), 'v2:2',
	'CREATE OR REPLACE FUNCTION: the query calling it directly shows the new result too');

# DDL on the harmless list keeps the entries (and is not counted). (COMMENT
# ON TABLE names the table in the stream, which removes that table's entries:
# comment on something else.)
{
	my $read = 'SELECT name FROM items WHERE id = 2';
	is(warm($read), 'pear', 'harmless DDL: the read is cached');
	my $s0 = cache_status();
	$node->safe_psql('app', 'SET ROLE app; CREATE INDEX items_name ON items (name)');
	$node->safe_psql('app', "SET ROLE app; COMMENT ON FUNCTION label(int) IS 'a label'");
	$node->safe_psql('app', 'SET ROLE app; DROP INDEX items_name');
	my $text = stream_text();
	like($text, qr/^ddl CREATE INDEX index public\.items_name$/m,
		'harmless DDL: the stream carries CREATE INDEX');
	like($text, qr/^ddl COMMENT function public\.label\(integer\)$/m,
		'harmless DDL: and COMMENT');
	like($text, qr/^ddl DROP INDEX index public\.items_name$/m, 'harmless DDL: and DROP INDEX');
	ok(stream_caught_up(), 'harmless DDL: the agent applied the three records');
	my $s1 = cache_status();
	is(sel($read), 'pear', 'harmless DDL: same answer');
	is(cache_status()->{hits}, $s1->{hits} + 1, 'harmless DDL: still a hit');
	is($s1->{ddl_invalidations}, $s0->{ddl_invalidations}, 'harmless DDL: nothing counted');
	is($s1->{invalidated}, $s0->{invalidated}, 'harmless DDL: no entry removed');
}

# /metrics has the counter
{
	my $body = '';
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport, Timeout => 10);
	if ($sock)
	{
		print $sock "GET /metrics HTTP/1.0\r\n\r\n";
		local $/;
		$body = <$sock> // '';
	}
	like($body, qr/^hyperdrive_cache_ddl_invalidations_total\{config="app"\} 3$/m,
		'/metrics: hyperdrive_cache_ddl_invalidations_total counts the three');
}

$node->safe_psql('app', "SELECT pg_drop_replication_slot('ddl_watch')");
$agent->signal('INT');
$agent->finish;
done_testing();
