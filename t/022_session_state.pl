# Session state under pooling, compared with what PostgreSQL gives a direct
# session, with several clients on ONE origin connection
# (origin_connection_limit 1):
#  - startup parameters: options before the packet's other parameters,
#    custom names that need quoting, the default application_name;
#  - RESET and RESET ALL go back to the client's startup values;
#  - SET through the extended protocol (pgjdbc at connect) is carried, not
#    pinned; inside a transaction block it pins;
#  - session state changed by server-side code (DO blocks, functions calling
#    set_config(..., false), SET ROLE in a DO block, pg_temp functions, a
#    custom setting set by a function) never reaches another client;
#  - protocol details: one FATAL when the origin ends the session, a
#    malformed startup packet closed without a reply, a Describe with an
#    invalid subtype is an ERROR.
use strict;
use warnings;

use File::Basename qw(dirname);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use PgWire;

my $PW = 'app-Secret-22';

my $node = start_origin('origin', logical => 1);
my $oport = $node->port;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE app LOGIN PASSWORD '$PW';
CREATE ROLE other NOLOGIN;
GRANT other TO app;
CREATE DATABASE app OWNER app;
SQL
$node->safe_psql('app', <<'SQL');
CREATE EXTENSION hyperdrive;
SET ROLE app;
CREATE SCHEMA evil;
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'public item');
CREATE TABLE evil.items (id int PRIMARY KEY, name text);
INSERT INTO evil.items VALUES (1, 'evil item');
CREATE FUNCTION set_path() RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM set_config('search_path', 'evil, public', false); RETURN 'done'; END $$;
CREATE FUNCTION set_tenant(t text) RETURNS text LANGUAGE sql AS
  $$ SELECT set_config('app.tenant', t, false) $$;
SQL

my $agent = hd_agent(name => '022_session_state',
	settings => "log_level = info\nquery_wait_timeout = 10\n",
	configs => [ [ 'create one (limit 1)', 'one',
		"--connection-string=postgresql://app:$PW\@127.0.0.1:$oport/app",
		'--sslmode', 'disable', '--origin-connection-limit', '1', '--caching-disabled' ] ],
	bail => 1);
my ($log, $aport) = @$agent{qw(log port)};

$PgWire::PORT = $aport;
%PgWire::LOGIN = (password => $PW, db => 'one');

sub ex { my ($c, $bytes) = @_; w_send($c, $bytes); return w_result($c); }

# The first value of a simple Query's result, or the error's SQLSTATE.
sub val
{
	my ($c, $sql) = @_;
	my $r = w_query($c, $sql);
	return 'ERROR ' . $r->{errors}[0]{C} if @{ $r->{errors} };
	return 'EOF' if $r->{eof};
	return $r->{rows}[0][0];
}

# A client straight to the origin (database app), to compare with.
sub direct { return w_login(port => $oport, db => 'app', @_); }

sub not_pinned
{
	my ($name) = @_;
	my $d = w_login();
	my $v = val($d, "SELECT 'free'");
	w_close($d);
	return is($v // 'blocked', 'free', "$name: the client is not pinned");
}

# ---------------------------------------------------------------------------
# Startup parameters.
{
	for my $order ([ 'options', 'datestyle', 'work_mem' ], [ 'datestyle', 'work_mem', 'options' ])
	{
		my %p = (options => '-c datestyle=German -c work_mem=3MB', datestyle => 'ISO',
			work_mem => '5MB', _order => $order);
		my $d = direct(params => {%p});
		my $c = w_login(params => {%p});
		is(val($c, 'SHOW work_mem'), val($d, 'SHOW work_mem'),
			"options and work_mem in the order @$order: the explicit parameter wins, as directly");
		is(val($c, 'SHOW datestyle'), val($d, 'SHOW datestyle'),
			"options and datestyle in the order @$order: applied in PostgreSQL's order");
		w_close($_) for $c, $d;
	}

	for my $p ({ options => '-c search_path=evil,public' }, { search_path => 'evil, public' })
	{
		my $c = w_login(params => $p);
		my $d = direct(params => $p);
		is(val($c, 'SELECT current_schemas(false)::text'), val($d, 'SELECT current_schemas(false)::text'),
			'a list setting at startup (' . join(',', %$p) . '): as many schemas as directly');
		w_close($_) for $c, $d;
	}

	my $c = w_login(params => { options => '-c myapp.user=alice' });
	is(val($c, "SELECT current_setting('myapp.user')"), 'alice',
		'-c myapp.user=alice (a reserved word in a custom name) works');
	w_close($c);

	$c = w_login();
	my $d = direct();
	is($c->{params}{application_name}, $d->{params}{application_name},
		'no application_name: the ParameterStatus says what PostgreSQL says');
	is(val($c, 'SHOW application_name'), val($d, 'SHOW application_name'),
		'... and SHOW application_name too (empty, not the agent\'s)');
	my $p = w_login(params => { application_name => 'psql-like' });
	is(val($p, 'SHOW application_name'), 'psql-like', 'another client names itself');
	is(val($c, 'SHOW application_name'), val($d, 'SHOW application_name'),
		'... and the unnamed one after it on the same origin connection still has none');
	w_close($_) for $c, $d, $p;
}

# ---------------------------------------------------------------------------
# RESET goes back to the startup value.
{
	my %p = (datestyle => 'Postgres, MDY', timezone => 'Asia/Tokyo');
	my $c = w_login(params => {%p});
	my $d = direct(params => {%p});
	for my $cc ($c, $d)
	{
		w_query($cc, 'SET datestyle = ISO');
		w_query($cc, "SET timezone = 'UTC'");
		w_query($cc, 'RESET datestyle');
	}
	is(val($c, 'SHOW datestyle'), val($d, 'SHOW datestyle'), 'RESET datestyle: the startup value');
	is(val($c, 'SHOW timezone'), 'UTC', 'the other SET stays');
	my $o = w_login();
	is(val($o, 'SHOW datestyle'), 'ISO, MDY', 'another client on the connection has the default');
	w_query($_, 'RESET ALL') for $c, $d;
	is(val($c, 'SHOW timezone'), val($d, 'SHOW timezone'), 'RESET ALL: the startup values');
	is(val($c, "SELECT '2020-01-02'::date::text"), val($d, "SELECT '2020-01-02'::date::text"),
		'... and dates come out as directly');
	w_close($_) for $c, $d, $o;
}

# ---------------------------------------------------------------------------
# SET through the extended protocol.
{
	my $c = w_login();
	my $r = ex($c, pq_parse('', 'SET extra_float_digits = 3') . pq_bind('') . pq_execute() . pq_sync());
	ok(!@{ $r->{errors} } && $r->{tags}[0] eq 'SET', 'SET extra_float_digits by Parse/Bind/Execute (pgjdbc)');
	$r = ex($c, pq_parse('', 'SET application_name = \'jdbc-like\'') . pq_bind('') . pq_execute() . pq_sync());
	ok(!@{ $r->{errors} }, 'SET application_name the same way');
	not_pinned('SET by the extended protocol');
	my $o = w_login();
	is(val($o, 'SHOW extra_float_digits'), '1', 'another client on the same connection: the default');
	is(val($c, 'SHOW extra_float_digits'), '3', 'the client keeps its setting on the connection after it');
	is(val($c, 'SHOW application_name'), 'jdbc-like', '... and its application_name');
	is(val($o, 'SHOW application_name'), '', 'the other client has none');

	ex($c, fmsg('Q', "BEGIN\0"));
	$r = ex($c, pq_parse('', 'SET work_mem = \'9MB\'') . pq_bind('') . pq_execute() . pq_sync());
	ex($c, fmsg('Q', "COMMIT\0"));
	is(val($c, 'SHOW work_mem'), '9MB', 'a SET by Parse inside a transaction block holds');
	like(slurp_from($log), qr/pinned to its origin connection: SET inside a transaction block/,
		'... the client is pinned for it');
	w_close($_) for $c, $o;
}

# ---------------------------------------------------------------------------
# Session state changed by server-side code.
for my $case (
	[ 'a DO block calling set_config(..., false)',
		q{DO $$BEGIN PERFORM set_config('search_path', 'evil, public', false); END$$},
		'SHOW search_path', 'evil, public' ],
	[ 'a function calling set_config(..., false)',
		'SELECT set_path()', 'SELECT name FROM items', 'evil item' ],
	[ 'SET ROLE run by EXECUTE in a DO block',
		q{DO $$BEGIN EXECUTE 'SET ROLE other'; END$$}, 'SELECT current_user', 'other' ],
	[ 'a custom setting set by a function (a tenant id)',
		q{SELECT set_tenant('42')}, q{SELECT coalesce(current_setting('app.tenant', true), 'none')},
		'42' ],
	[ 'a session advisory lock taken by a function',
		q{DO $$BEGIN PERFORM pg_advisory_lock(7); END$$},
		q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()}, '1' ],
	[ 'a function created in pg_temp',
		q{CREATE FUNCTION pg_temp.secret() RETURNS text LANGUAGE sql AS $$ SELECT 'temp fn' $$},
		'SELECT pg_temp.secret()', 'temp fn' ])
{
	my ($name, $change, $probe, $changed) = @$case;
	my $fresh = direct();
	my $clean = val($fresh, $probe);	# what a new session sees
	w_close($fresh);
	my $a = w_login();
	my $b = w_login();
	my $r = w_query($a, $change);
	ok(!@{ $r->{errors} }, "$name: runs") or diag(explain($r->{errors}));
	is(val($a, $probe), $changed, "$name: the client that did it sees it, as directly");
	# B asks on the same (only) origin connection, then A leaves
	w_send($b, fmsg('Q', "$probe\0"));
	is(val($a, $probe), $changed, "$name: and keeps it in its next transaction");
	w_close($a);
	$r = w_result($b);
	my $bv = @{ $r->{errors} } ? 'ERROR ' . $r->{errors}[0]{C} : $r->{rows}[0][0];
	is($bv, $clean, "$name: another client on the same origin connection never sees it")
	  or diag('the other client saw the first one\'s session state');
	w_close($b);
	my $c = w_login();
	is(val($c, $probe), $clean, "$name: nor a client that comes after it left");
	w_close($c);
}
like(slurp_from($log), qr/pinned to its origin connection: session state changed on the origin/,
	'the agent logs why it pinned those clients');

# ---------------------------------------------------------------------------
# Protocol details.
{
	# the origin ends the session: one FATAL, then the end, as directly
	my $c = w_login();
	my $pid = val($c, 'SELECT pg_backend_pid()');
	w_send($c, fmsg('Q', "SELECT pg_sleep(30)\0"));
	wait_for(sub { $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE 'SELECT pg_sleep%'") eq '1' });
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	my @errors;
	for (;;)
	{
		my ($type, $body) = w_msg($c, 10);
		last if $type eq 'EOF' || $type eq 'TIMEOUT';
		push @errors, err_fields($body) if $type eq 'E';
	}
	is(scalar @errors, 1, 'pg_terminate_backend: the client gets one error');
	is($errors[0]{C}, '57P01', '... the origin\'s FATAL 57P01');

	# a malformed startup packet: closed without a reply, as PostgreSQL does
	for my $target ([ 'agent', $aport ], [ 'origin', $oport ])
	{
		my $s = w_connect(port => $target->[1]);
		w_send($s, pack('N', 3));
		my ($type) = w_msg($s, 5);
		is($type, 'EOF', "startup length 3 to the $target->[0]: closed without a reply");
	}

	$c = w_login();
	my $r = ex($c, fmsg('D', "X\0") . pq_sync());
	is($r->{errors}[0]{C} // 'none', '08P01', 'a Describe with an invalid subtype: ERROR 08P01');
	like($r->{errors}[0]{M} // '', qr/invalid DESCRIBE message subtype/, '... in PostgreSQL\'s words');
	is(val($c, "SELECT 'still here'"), 'still here', '... and the session goes on');
	w_close($c);
}

$agent->kill_kill;
done_testing();
