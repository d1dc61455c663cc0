# The config-managing subcommands of the agent (create, list, get, update,
# delete) and its settings file, from the outside.
#
# No PostgreSQL server is involved: everything happens in a temporary state
# directory. Checks every subcommand and option, the errors for bad settings
# files, bad options and damaged config files, the modes of the files that
# hold passwords, and that no output ever contains a password.
#
# Needs agent/hyperdrive (make agent). Run from the repository root with
#   prove -v t/010_configs_cli.pl
# HD_CLI_WRAPPER='valgrind -q --error-exitcode=99 --leak-check=full' runs the
# binary under a wrapper.
use strict;
use warnings;

use Cwd qw(getcwd);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IPC::Run;
use Test::More;

my $agent =
  File::Spec->rel2abs(dirname(__FILE__) . '/../agent/hyperdrive');
BAIL_OUT("$agent is missing: run 'make agent' first") unless -x $agent;
my @wrapper = split ' ', ($ENV{HD_CLI_WRAPPER} // '');

my $dir = tempdir('hd_configs_XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $state = "$dir/state";
my $configs = "$state/configs";
my $ini = "$dir/hyperdrive.ini";

# Every password the test uses; none may ever show up in any output.
my @passwords = ('s3cret-URI-pw', 'kv%Secret#2', 'stdin-Secret-3', 'flag-Secret-4',
	'update-Secret-5', 'masked-Secret-6', 'my/Secret@7', 'my-Secret-8');
my $all_output = '';

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
}

sub read_file
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return scalar <$fh>;
}

# Runs the agent; returns (exit status, stdout, stderr). Options in a leading
# hash: stdin, env (added to %ENV), cwd. A signal is a failure of its own.
sub hd
{
	my %o = ref $_[0] eq 'HASH' ? %{ shift() } : ();
	my ($in, $out, $err) = ($o{stdin} // '', '', '');
	local %ENV = (%ENV, %{ $o{env} // {} });
	delete $ENV{HYPERDRIVE_CONF} unless $o{env} && exists $o{env}{HYPERDRIVE_CONF};
	my @init = $o{cwd} ? (init => sub { chdir $o{cwd} or die $! }) : ();
	IPC::Run::run([ @wrapper, $agent, @_ ], '<', \$in, '>', \$out, '2>', \$err, @init);
	my ($status, $signal) = ($? >> 8, $? & 127);
	$all_output .= $out . $err;
	is($signal, 0, "no crash: @_[0 .. ($#_ < 1 ? $#_ : 1)]") if $signal;
	return ($status, $out, $err);
}

# Runs a subcommand with -c $ini; expects success; returns stdout.
sub ok_run
{
	my ($name, @args) = @_;
	my %o = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
	my ($status, $out, $err) = hd(\%o, @args, '-c', $ini);
	is($status, 0, "$name: exit 0") or diag($err);
	is($err, '', "$name: nothing on stderr");
	return $out;
}

# Expects exit 1 and a message on stderr matching $re.
sub fails_like
{
	my ($name, $re, @args) = @_;
	my ($status, $out, $err) = hd(@args);
	is($status, 1, "$name: exit 1");
	like($err, $re, "$name: says why");
	return $err;
}

# get's output as a hash.
sub get_fields
{
	my ($out) = @_;
	return { map { /^([^:]+): (.*)$/ ? ($1, $2) : () } split /\n/, $out };
}

sub mode_of { return (stat $_[0])[2] & 07777; }

write_file($ini, <<"EOF");
; hyperdrive agent settings for this test
[agent]
# the state directory does not exist yet: create makes it
state_dir = $state
listen_port = 7432
mysql_listen_port = 7433
query_wait_timeout = 2min
server_login_retry = 500ms
admin_users = alice, bob
EOF

# ---------------------------------------------------------------------------
# Help.
{
	my ($status, $out) = hd('--help');
	is($status, 0, '--help: exit 0');
	like($out, qr/hyperdrive create NAME --connection-string=URI/, '--help lists create');
	like($out, qr/decode-stream/, '--help still lists decode-stream');
	for my $cmd (qw(create list get update delete))
	{
		($status, $out) = hd($cmd, '--help');
		is($status, 0, "$cmd --help: exit 0");
		like($out, qr/^Usage: hyperdrive $cmd/, "$cmd --help: usage");
		like($out, qr/-c FILE/, "$cmd --help: mentions -c FILE");
	}
	($status, $out) = hd('update', '-h');
	like($out, qr/--origin-password/, 'update -h: lists --origin-password');
	($status, $out) = hd('decode-stream', '--help');
	is($status, 0, 'decode-stream --help still works');
	($status) = hd('no-such-command');
	is($status, 2, 'unknown command: exit 2');
}

# ---------------------------------------------------------------------------
# Empty store.
like(ok_run('list (empty)', 'list'), qr/^no configs/, 'list says there are no configs');
ok(!-e $state, 'list does not create the state directory');

# ---------------------------------------------------------------------------
# create.
my $shop_out = ok_run('create shop', 'create', 'shop',
	'--connection-string=postgresql://app:s3cret-URI-pw@db.example.com:5433/shopdb?sslmode=require');
like($shop_out, qr/^id: [0-9a-f]{32}\nname: shop\n/, 'create prints id and name');
like($shop_out, qr{^connection string: postgresql://app\@127\.0\.0\.1:7432/shop$}m,
	'create prints the client connection string (listen address, config name)');
my ($shop_id) = $shop_out =~ /^id: ([0-9a-f]{32})$/m;

is(mode_of($state), 0700, 'state_dir created 0700');
is(mode_of($configs), 0700, 'configs dir is 0700');
is(mode_of("$configs/$shop_id.password"), 0600, 'password file is 0600');
is(mode_of("$configs/$shop_id.conf"), 0600, 'conf file is 0600');
is(read_file("$configs/$shop_id.password"), 's3cret-URI-pw', 'password file holds the password');
unlike(read_file("$configs/$shop_id.conf"), qr/s3cret/, 'conf file has no password');
is_deeply([ grep { /^\.[^.]/ && $_ ne '.lock' } do { opendir my $d, $configs; readdir $d } ],
	[], 'no temporary files left behind');

# key=value form, every create option, options overriding the string
write_file("$dir/ca.pem", "not really a certificate\n");
my $an_out = ok_run('create analytics (key=value, all options)',
	{ cwd => $dir },
	'create', 'analytics',
	'--connection-string', "host=10.0.0.7 port=6543 dbname=an user=reporter password='kv%Secret#2' sslmode=disable",
	'--origin-connection-limit', '5', '--caching-disabled', '--max-age', '10', '--swr=5',
	'--sslmode', 'verify-full', '--sslrootcert', 'ca.pem', '--pool-mode', 'session',
	'--consistency', 'strict');
my ($an_id) = $an_out =~ /^id: ([0-9a-f]{32})$/m;
isnt($an_id, $shop_id, 'each config gets its own id');
my $an = get_fields(ok_run('get analytics', 'get', 'analytics'));
is_deeply(
	$an,
	{
		id => $an_id, name => 'analytics', protocol => 'postgresql', host => '10.0.0.7', port => '6543',
		database => 'an', user => 'reporter', password => '(set)',
		sslmode => 'verify-full', sslrootcert => "$dir/ca.pem",
		origin_connection_limit => '5', pool_mode => 'session',
		caching_disabled => 'true', max_age => '10', stale_while_revalidate => '5',
		consistency => 'strict', allow_load_local => 'false',
		'connection string' => 'postgresql://reporter@127.0.0.1:7432/analytics',
	},
	'get shows every field; options override the connection string; sslrootcert made absolute');
is(read_file("$configs/$an_id.password"), 'kv%Secret#2', 'quoted key=value password stored');

# password from stdin, defaults, port defaulting to 5432
my $st_out = ok_run('create stdin (--origin-password -)', { stdin => "stdin-Secret-3\n" },
	'create', 'stdin-db', '--connection-string=postgresql://u1@[::1]/d1', '--origin-password', '-');
my ($st_id) = $st_out =~ /^id: ([0-9a-f]{32})$/m;
is(read_file("$configs/$st_id.password"), 'stdin-Secret-3', '--origin-password - reads one line');
my $st = get_fields(ok_run('get stdin-db by id', 'get', $st_id));
is($st->{port}, '5432', 'port defaults to 5432');
is($st->{host}, '::1', 'IPv6 host from a URI');
is($st->{sslmode}, 'prefer', 'sslmode defaults to prefer');
is($st->{sslrootcert}, '(not set)', 'sslrootcert not set');
is($st->{origin_connection_limit}, '20', 'limit defaults to 20');
is($st->{pool_mode}, 'transaction', 'pool mode defaults to transaction');
is($st->{caching_disabled}, 'false', 'caching on by default');
is($st->{max_age}, '60', 'max_age defaults to 60');
is($st->{stale_while_revalidate}, '15', 'swr defaults to 15');
is($st->{consistency}, 'bounded', 'consistency defaults to bounded');

# no password at all; password given as an option
my $np_out = ok_run('create nopw', 'create', 'nopw', '--connection-string=host=h1 user=u2 dbname=d2');
my ($np_id) = $np_out =~ /^id: ([0-9a-f]{32})$/m;
ok(!-e "$configs/$np_id.password", 'no password: no password file');
is(get_fields(ok_run('get nopw', 'get', 'nopw'))->{password}, '(not set)', 'get: password (not set)');
ok_run('create flagpw', 'create', 'flagpw', '--connection-string=postgresql://u3:overridden@h3/d3',
	'--origin-password=flag-Secret-4');
my ($fp_id) = map { /(\w+)\.conf$/ } grep { read_file($_) =~ /name = flagpw/ } glob("$configs/*.conf");
is(read_file("$configs/$fp_id.password"), 'flag-Secret-4', '--origin-password overrides the URI password');

# ---------------------------------------------------------------------------
# list.
{
	my $out = ok_run('list', 'list');
	my @lines = split /\n/, $out;
	is(scalar @lines, 6, 'list: a header and one line per config');
	like($lines[0], qr/^ID\s+NAME\s+PROTOCOL\s+ORIGIN\s+LIMIT\s+POOL\s+CACHING$/, 'list: header');
	my @names = map { (split ' ', $_)[1] } @lines[ 1 .. $#lines ];
	is_deeply(\@names, [qw(analytics flagpw nopw shop stdin-db)], 'list: sorted by name');
	my $col = index($lines[0], 'ORIGIN');
	is_deeply([ map { substr($_, $col - 2, 2) } @lines ], [ ('  ') x 6 ], 'list: aligned columns');
	my ($shop_line) = grep { /\bshop\b/ } @lines;
	like($shop_line, qr{^$shop_id\s+shop\s+postgresql\s+app\@db\.example\.com:5433/shopdb\s+20\s+transaction\s+on \(max_age 60s, swr 15s, bounded\)$},
		'list: shop line');
	my ($an_line) = grep { /\banalytics\b/ } @lines;
	like($an_line, qr{reporter\@10\.0\.0\.7:6543/an\s+5\s+session\s+off$}, 'list: analytics line');
	like($out, qr{u1\@\[::1\]:5432/d1}, 'list: IPv6 origin in brackets');
}

# ---------------------------------------------------------------------------
# update.
{
	my $u = get_fields(ok_run('update shop: every option', 'update', 'shop',
		'--name', 'shop2', '--origin-connection-limit=50', '--caching-disabled', 'true',
		'--max-age', '0', '--swr', '3600', '--sslmode', 'verify-ca',
		'--sslrootcert', "$dir/ca.pem", '--pool-mode', 'session', '--consistency=strict'));
	is($u->{id}, $shop_id, 'update: same id');
	is($u->{name}, 'shop2', 'update: renamed');
	is($u->{origin_connection_limit}, '50', 'update: limit');
	is($u->{caching_disabled}, 'true', 'update: caching disabled');
	is($u->{max_age}, '0', 'update: max_age');
	is($u->{stale_while_revalidate}, '3600', 'update: swr');
	is($u->{sslmode}, 'verify-ca', 'update: sslmode');
	is($u->{sslrootcert}, "$dir/ca.pem", 'update: sslrootcert');
	is($u->{pool_mode}, 'session', 'update: pool mode');
	is($u->{consistency}, 'strict', 'update: consistency');
	is($u->{host}, 'db.example.com', 'update: host kept');
	is($u->{password}, '(set)', 'update: password kept');
	is($u->{'connection string'}, 'postgresql://app@127.0.0.1:7432/shop2', 'update: new client string');
	is_deeply(get_fields(ok_run('get shop2', 'get', 'shop2')), $u, 'update: persisted as printed');

	$u = get_fields(ok_run('update: --caching-disabled false', 'update', $shop_id,
		'--caching-disabled=false', '--sslrootcert', ''));
	is($u->{caching_disabled}, 'false', 'update: caching enabled again');
	is($u->{sslrootcert}, '(not set)', 'update: --sslrootcert "" unsets it');

	$u = get_fields(ok_run('update: --connection-string without password', 'update', 'shop2',
		'--connection-string', 'postgresql://app2@db2.example.com/shopdb2'));
	is("$u->{user}\@$u->{host}:$u->{port}/$u->{database}", 'app2@db2.example.com:5432/shopdb2',
		'update: origin from the new connection string (port back to 5432)');
	is($u->{sslmode}, 'verify-ca', 'update: sslmode kept when the string has none');
	is(read_file("$configs/$shop_id.password"), 's3cret-URI-pw', 'update: password kept when the string has none');

	ok_run('update: --origin-password P', 'update', 'shop2', '--origin-password', 'update-Secret-5');
	is(read_file("$configs/$shop_id.password"), 'update-Secret-5', 'update: password from the option');
	ok_run('update: --origin-password -', { stdin => "masked-Secret-6\r\nignored\n" },
		'update', 'shop2', '--origin-password', '-');
	is(read_file("$configs/$shop_id.password"), 'masked-Secret-6', 'update: password from stdin, one line');
	is(mode_of("$configs/$shop_id.password"), 0600, 'update: password file still 0600');
	$u = get_fields(ok_run('update: --origin-password ""', 'update', 'shop2', '--origin-password', ''));
	is($u->{password}, '(not set)', 'update: empty password removes it');
	ok(!-e "$configs/$shop_id.password", 'update: password file removed');
}

# ---------------------------------------------------------------------------
# MySQL/MariaDB origins: a mysql:// URI makes a config of protocol mysql,
# reached on mysql_listen_port, with caching off (not available yet).
{
	my $out = ok_run('create myshop (mysql://)', { cwd => $dir }, 'create', 'myshop',
		'--connection-string=mysql://app:my%2FSecret%407@db.example.com/shopdb?ssl-mode=VERIFY_CA&ssl-ca=ca.pem');
	like($out, qr{^connection string: mysql://app\@127\.0\.0\.1:7433/myshop$}m,
		'create mysql: the client URI is mysql:// on mysql_listen_port');
	my ($my_id) = $out =~ /^id: ([0-9a-f]{32})$/m;
	is(read_file("$configs/$my_id.password"), 'my/Secret@7', 'create mysql: the password, percent-decoded');
	my $my = get_fields(ok_run('get myshop', 'get', 'myshop'));
	is_deeply(
		[ @$my{qw(protocol host port database user sslmode sslrootcert caching_disabled allow_load_local)} ],
		[ 'mysql', 'db.example.com', '3306', 'shopdb', 'app', 'verify-ca', "$dir/ca.pem", 'true', 'false' ],
		'get mysql: protocol, origin, port 3306 by default, ssl-mode and ssl-ca mapped, caching off');
	like(read_file("$configs/$my_id.conf"), qr/^protocol = mysql$/m, 'the .conf file says protocol = mysql');
	my ($line) = grep { /\bmyshop\b/ } split /\n/, ok_run('list with a MySQL config', 'list');
	like($line, qr{^$my_id\s+myshop\s+mysql\s+app\@db\.example\.com:3306/shopdb\s+20\s+transaction\s+off$},
		'list: the protocol column says mysql');

	fails_like('create mysql with caching', qr/^hyperdrive create: caching is not available for MySQL origins yet/,
		'create', 'mycache', '--connection-string=mysql://u@h/d', '--caching-disabled=false', '-c', $ini);
	fails_like('update mysql to caching', qr/^hyperdrive update: caching is not available for MySQL origins yet/,
		'update', 'myshop', '--caching-disabled=false', '-c', $ini);
	is(get_fields(ok_run('update myshop --allow-load-local', 'update', 'myshop', '--allow-load-local=true'))
		  ->{allow_load_local}, 'true', 'update: --allow-load-local=true');
	fails_like('allow-load-local on a PostgreSQL config', qr/allow_load_local is for MySQL origins/,
		'update', 'nopw', '--allow-load-local=true', '-c', $ini);
	fails_like('--allow-load-local maybe', qr/--allow-load-local must be true or false, not "maybe"/,
		'update', 'myshop', '--allow-load-local=maybe', '-c', $ini);
	fails_like('sslmode allow on a MySQL config', qr/sslmode allow has no MySQL equivalent/,
		'update', 'myshop', '--sslmode=allow', '-c', $ini);
	my $err = fails_like('mysql URI: unknown option', qr/the connection string's option "charset" is not supported/,
		'create', 'x', '--connection-string=mysql://u:my-Secret-8@h/d?charset=utf8', '-c', $ini);
	fails_like('mysql URI: unescaped / in the password', qr/the connection string has no user; .*percent-encode/,
		'create', 'x', '--connection-string=mysql://u:my-Secret-8/x@h/d', '-c', $ini);
	fails_like('mysql URI: a bad port, not shown', qr/port must be a number from 1 to 65535 \(not shown/,
		'create', 'x', '--connection-string=mysql://u:my-Secret-8@h:port/d', '-c', $ini);

	$out = ok_run('create mariadb:// with --allow-load-local', 'create', 'maria',
		'--connection-string=mariadb://m@[::1]:3310/md', '--allow-load-local', 'true');
	my $m = get_fields(ok_run('get maria', 'get', 'maria'));
	is_deeply([ @$m{qw(protocol host port allow_load_local)} ], [ 'mysql', '::1', '3310', 'true' ],
		'mariadb://: protocol mysql, IPv6 host, port, allow_load_local');

	# a config changes protocol with its connection string
	ok_run('create switch (postgresql)', 'create', 'switch', '--connection-string=postgresql://s@h/d');
	my $sw = get_fields(ok_run('update switch to mysql://', 'update', 'switch',
		'--connection-string=mysql://s@myhost/d'));
	is_deeply([ @$sw{qw(protocol port caching_disabled)} ], [ 'mysql', '3306', 'true' ],
		'update to mysql://: protocol mysql, port 3306, caching off');
	ok_run('update switch --allow-load-local', 'update', 'switch', '--allow-load-local=true');
	$sw = get_fields(ok_run('update switch back to postgresql://', 'update', 'switch',
		'--connection-string=postgresql://s@h/d'));
	is_deeply([ @$sw{qw(protocol port allow_load_local)} ], [ 'postgresql', '5432', 'false' ],
		'update back to postgresql://: protocol, port 5432, allow_load_local off');
	like($sw->{'connection string'}, qr{^postgresql://s\@127\.0\.0\.1:7432/switch$}, 'and the PostgreSQL client URI');

	# without mysql_listen_port the client URI says how to get one
	my $nomy = "$dir/nomysql.ini";
	write_file($nomy, "[agent]\nstate_dir = $state\nmysql_listen_port =\n");
	my ($status, $got) = hd('get', 'myshop', '-c', $nomy);
	is($status, 0, 'get mysql config, no MySQL listener: exit 0');
	like($got, qr/^connection string: \(none yet: the agent has no MySQL listener; set mysql_listen_port/m,
		'get mysql config, no MySQL listener: says which setting makes one');

	ok_run("delete $_", 'delete', $_) for qw(myshop maria switch);
}

# ---------------------------------------------------------------------------
# Settings file: default location and $HYPERDRIVE_CONF.
{
	my ($status, $out) = hd({ env => { HYPERDRIVE_CONF => $ini } }, 'get', 'nopw');
	is($status, 0, '$HYPERDRIVE_CONF names the settings file');
	($status, $out) = hd({ cwd => $dir }, 'get', 'nopw');
	is($status, 0, './hyperdrive.ini is the default');
	my $err;
	($status, $out, $err) = hd({ cwd => $state }, 'list');
	is($status, 1, 'no settings file: exit 1');
	like($err, qr/hyperdrive\.ini: cannot read: No such file.*-c FILE or \$HYPERDRIVE_CONF/,
		'no settings file: says how to name one');
}

# Bad settings files: each names the file, the line and the fix.
my $bad = "$dir/bad.ini";
for my $case (
	[ "listen_prot = 6432\n", qr/^hyperdrive list: \Q$bad\E:3: unknown setting "listen_prot"; did you mean "listen_port"\?$/, 'unknown key, with a suggestion' ],
	[ "listen_port = 99999\n", qr/:3: listen_port must be an integer from 1 to 65535, not "99999"$/, 'bad port' ],
	[ "query_wait_timeout = 2 days\n", qr/:3: query_wait_timeout must be a time from 0 to 720h \(seconds, or a number with a unit: ms, s, min, h\), not "2 days"/, 'bad time' ],
	[ "server_login_retry = 31s\n", qr/:3: server_login_retry must be a time from 1ms to 30s/, 'time out of range' ],
	[ "auth_recheck_interval = 2h\n", qr/:3: auth_recheck_interval must be a time from 0 to 1h /, 'auth_recheck_interval out of range' ],
	[ "log_level = verbose\n", qr/:3: log_level must be one of error, warning, info, debug/, 'bad log level' ],
	[ "auth_type = trust\n", qr/:3: auth_type must be one of scram-sha-256, md5, password/, 'bad auth type' ],
	[ "metrics_addr = localhost\n", qr/:3: metrics_addr must be host:port/, 'bad metrics_addr' ],
	[ "tls_cert_file = /x.pem\n", qr/\Q$bad\E: tls_cert_file is set but tls_key_file is not/, 'TLS files go in pairs' ],
	[ "listen_port = 1\nlisten_port = 2\n", qr/:4: listen_port is already set on line 3/, 'set twice' ],
	[ "mysql_listen_port = 0\n", qr/:3: mysql_listen_port must be an integer from 1 to 65535, or empty to turn it off, not "0"$/, 'mysql_listen_port 0' ],
	[ "mysql_listen_port = 3307x\n", qr/:3: mysql_listen_port must be an integer from 1 to 65535/, 'mysql_listen_port not a number' ],
	[ "mysql_listen_port = 6432\n", qr/\Q$bad\E: mysql_listen_port is listen_port \(6432\); the MySQL listener needs a port of its own/, 'mysql_listen_port = (default) listen_port' ],
	[ "[pgbouncer]\n", qr/:3: unknown section \[pgbouncer\]; hyperdrive's settings go in \[agent\]/, 'unknown section' ],
	[ "just words\n", qr/:3: expected "name = value"/, 'not a setting' ])
{
	my ($lines, $re, $what) = @$case;
	write_file($bad, "[agent]\nstate_dir = $state\n$lines");
	fails_like("settings: $what", $re, 'list', '-c', $bad);
}
write_file($bad, "[agent]\nlisten_port = 6432\n");
fails_like('settings: missing state_dir',
	qr/^hyperdrive list: \Q$bad\E: state_dir is required \(the directory where configs and the cache live\)/,
	'list', '-c', $bad);
write_file($bad, "[agent]\nstate_dir = var/lib/hd\n");
fails_like('settings: relative state_dir', qr/:2: state_dir must be an absolute path/, 'list', '-c', $bad);
write_file($bad, "listen_port = 1\n");
fails_like('settings: outside [agent]', qr/:1: "listen_port" is outside a section; put an \[agent\] line above it/,
	'list', '-c', $bad);
write_file($bad, "[agent]\n  state_dir =  $state  \n# comment\n; comment\nlisten_addr = ::1\n"
	  . "metrics_addr = [::1]:9127\nclient_idle_timeout = 1h\nserver_lifetime = 90min\n"
	  . "tls_cert_file = /c.pem\ntls_key_file = /k.pem\nauth_type = md5\nlog_level = debug\n"
	  . "max_client_conn = 10\nadmin_users =\n");
{
	my ($status, $out) = hd('get', 'nopw', '-c', $bad);
	is($status, 0, 'settings: every setting, blanks and comments accepted');
	like($out, qr{^connection string: postgresql://u2\@\[::1\]:6432/nopw$}m,
		'client connection string uses listen_addr (IPv6 in brackets) and the default port');
}

# ---------------------------------------------------------------------------
# Bad options and values.
my @cs = ('--connection-string=postgresql://u@h/d');
fails_like('max-age 3601', qr/^hyperdrive create: --max-age must be an integer from 0 to 3600 \(seconds\), not "3601"$/,
	'create', 'x', @cs, '--max-age', '3601', '-c', $ini);
fails_like('unknown consistency', qr/^hyperdrive create: --consistency must be one of bounded, strict, not "eventual"$/,
	'create', 'x', @cs, '--consistency', 'eventual', '-c', $ini);
fails_like('swr -1', qr/--swr must be an integer from 0 to 3600/, 'create', 'x', @cs, '--swr=-1', '-c', $ini);
fails_like('unknown sslmode', qr/--sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, not "maybe"/,
	'create', 'x', @cs, '--sslmode', 'maybe', '-c', $ini);
fails_like('sslmode in the string', qr/the connection string's sslmode must be one of/,
	'create', 'x', '--connection-string=postgresql://u@h/d?sslmode=on', '-c', $ini);
fails_like('limit 0', qr/--origin-connection-limit must be an integer from 1 to 10000, not "0"/,
	'create', 'x', @cs, '--origin-connection-limit', '0', '-c', $ini);
fails_like('limit 10001', qr/--origin-connection-limit must be an integer from 1 to 10000/,
	'update', 'nopw', '--origin-connection-limit', '10001', '-c', $ini);
fails_like('pool mode', qr/--pool-mode must be one of transaction, session, not "statement"/,
	'create', 'x', @cs, '--pool-mode=statement', '-c', $ini);
fails_like('missing sslrootcert file', qr/--sslrootcert: cannot use "no-such\.pem": No such file or directory/,
	'create', 'x', @cs, '--sslrootcert', 'no-such.pem', '-c', $ini);
fails_like('duplicate name', qr/a config named "analytics" already exists \(id $an_id\); choose another name/,
	'create', 'analytics', @cs, '-c', $ini);
fails_like('rename onto another', qr/a config named "nopw" already exists/,
	'update', 'analytics', '--name', 'nopw', '-c', $ini);
fails_like('name hyperdrive', qr/the name "hyperdrive" is reserved for the admin console/,
	'create', 'hyperdrive', @cs, '-c', $ini);
fails_like('uppercase name', qr/may only hold a-z, 0-9, _ and -, but has "S" at position 1 \(use lowercase\)/,
	'create', 'Shop', @cs, '-c', $ini);
fails_like('long name', qr/the name is 64 characters long; at most 63/, 'create', 'a' x 64, @cs, '-c', $ini);
fails_like('id-like name', qr/must not look like a config id/, 'create', 'a' x 32, @cs, '-c', $ini);
fails_like('no host', qr/the connection string has no host; write it as postgresql:/,
	'create', 'x', '--connection-string=postgresql:///d?user=u', '-c', $ini);
fails_like('no user', qr/the connection string has no user/, 'create', 'x', '--connection-string=host=h dbname=d', '-c', $ini);
fails_like('no dbname', qr/the connection string has no dbname/, 'create', 'x', '--connection-string=postgresql://u@h', '-c', $ini);
fails_like('two hosts', qr/the connection string's host must be one host, not a list/,
	'create', 'x', '--connection-string=postgresql://u@h1,h2/d', '-c', $ini);
fails_like('unsupported option', qr/the connection string's option "sslcert" is not supported/,
	'create', 'x', '--connection-string=postgresql://u@h/d?sslcert=/c', '-c', $ini);
my $e = fails_like('unparsable URI, password masked', qr/invalid connection string: invalid percent-encoded token: "\*\*\*"/,
	'create', 'x', '--connection-string=postgresql://u:masked-Secret-6%zz@h/d', '-c', $ini);
$e = fails_like('unparsable key=value', qr/invalid connection string: .*unterminated quoted string/,
	'create', 'x', "--connection-string=host=h user=u dbname=d password='masked-Secret-6", '-c', $ini);
fails_like('password part in the port', qr/the connection string's port is not valid \(not shown/,
	'create', 'x', '--connection-string=postgresql://u:masked-Secret-6/x@h/d?user=u', '-c', $ini);
fails_like('connection string as NAME', qr/^hyperdrive create: NAME: the name may only hold .* at position 11\n\z/,
	'create', 'postgresql://u:masked-Secret-6@h/d', @cs, '-c', $ini);
fails_like('missing --connection-string', qr/--connection-string=URI is required/, 'create', 'x', '-c', $ini);
fails_like('missing NAME', qr/missing NAME/, 'create', @cs, '-c', $ini);
fails_like('two NAMEs', qr/too many arguments: it takes one NAME/, 'create', 'x', 'y', @cs, '-c', $ini);
fails_like('unknown option', qr/unknown option "--max_age"; did you mean "--max-age"\?/,
	'create', 'x', @cs, '--max_age=5', '-c', $ini);
fails_like('--name on create', qr/unknown option "--name"/, 'create', 'x', @cs, '--name', 'y', '-c', $ini);
fails_like('option without value', qr/--max-age needs a value/, 'update', 'nopw', '-c', $ini, '--max-age');
fails_like('update with nothing', qr/nothing to change/, 'update', 'nopw', '-c', $ini);
fails_like('update --caching-disabled without value', qr/--caching-disabled needs a value/,
	'update', 'nopw', '-c', $ini, '--caching-disabled');
fails_like('update --caching-disabled maybe', qr/--caching-disabled must be true or false, not "maybe"/,
	'update', 'nopw', '--caching-disabled', 'maybe', '-c', $ini);
fails_like('update --origin-password - without input', qr/no password on standard input/,
	'update', 'nopw', '--origin-password', '-', '-c', $ini);
fails_like('update: password with a line break', qr/the password must be one line/,
	'update', 'nopw', "--origin-password=a\nb", '-c', $ini);
fails_like('get unknown', qr/no config has the id or name "nosuch" \(hyperdrive list shows them\)/,
	'get', 'nosuch', '-c', $ini);
fails_like('get without operand', qr/missing ID\|NAME/, 'get', '-c', $ini);
fails_like('list with operand', qr/takes no arguments/, 'list', 'x', '-c', $ini);
fails_like('-c without file', qr/-c needs a value/, 'list', '-c');
is(get_fields(ok_run('get nopw after failures', 'get', 'nopw'))->{max_age}, '60', 'failed commands changed nothing');

# ---------------------------------------------------------------------------
# Damaged config files: an error naming the file (and line), not a crash.
{
	my $conf = "$configs/$np_id.conf";
	my $good = read_file($conf);
	(my $old = $good) =~ s/^consistency = .*\n//m;
	isnt($old, $good, 'the conf file has a consistency line');
	write_file($conf, $old);
	is(get_fields(ok_run('get nopw from a conf written before consistency', 'get', 'nopw'))->{consistency},
		'bounded', 'a conf without consistency (written before it existed) means bounded');
	(my $badport = $good) =~ s/^port = .*$/port = fifty/m;
	my @lines = split /\n/, $badport;
	my ($port_line) = map { $_ + 1 } grep { $lines[$_] =~ /^port =/ } 0 .. $#lines;
	write_file($conf, $badport);
	fails_like('damaged conf: bad value', qr/^hyperdrive list: \Q$conf\E:$port_line: port must be an integer from 1 to 65535, not "fifty" \(fix the file, or remove the config with: hyperdrive delete $np_id\)$/,
		'list', '-c', $ini);
	fails_like('damaged conf: get of another config fails too', qr/\Q$conf\E:$port_line:/, 'get', 'analytics', '-c', $ini);
	write_file($conf, substr($good, 0, index($good, 'host =')));
	fails_like('half-written conf', qr/\Q$conf\E: "host" is missing \(half-written or damaged\?\)/, 'list', '-c', $ini);
	write_file($conf, '');
	fails_like('empty conf', qr/\Q$conf\E: the file is empty/, 'list', '-c', $ini);
	write_file($conf, "\x00\x01binary\xff\n");
	fails_like('binary conf', qr/\Q$conf\E:1: contains a NUL byte/, 'list', '-c', $ini);
	(my $unknown = $good) =~ s/^max_age/max_agee/m;
	write_file($conf, $unknown);
	fails_like('conf with unknown key', qr/\Q$conf\E:\d+: unknown key "max_agee"; did you mean "max_age"\?/, 'list', '-c', $ini);
	(my $otherid = $good) =~ s/^id = .*$/id = ${\('0' x 32)}/m;
	write_file($conf, $otherid);
	fails_like('conf with the wrong id', qr/\Q$conf\E:\d+: id "0{32}" does not match the file name/, 'list', '-c', $ini);
	(my $twin = $good) =~ s/^name = .*$/name = analytics/m;
	write_file($conf, $twin);
	fails_like('two configs, one name', qr/name "analytics" is also used by/, 'list', '-c', $ini);

	write_file($conf, $badport);
	my $out = ok_run('delete a damaged config by id', 'delete', $np_id);
	like($out, qr/^deleted config $np_id$/, 'delete: damaged config removed');
	ok(!-e $conf, 'delete: damaged .conf gone');
	ok_run('list works again', 'list');
	write_file("$configs/.leftover.conf.123.tmp", "garbage");
	write_file("$configs/notes.txt", "garbage");
	ok_run('stray files are ignored', 'list');
}

# ---------------------------------------------------------------------------
# delete.
{
	my $out = ok_run('delete by name', 'delete', 'analytics');
	like($out, qr/^deleted config analytics \(id $an_id\)$/, 'delete: says what it deleted');
	ok(!-e "$configs/$an_id.conf" && !-e "$configs/$an_id.password", 'delete: both files gone');
	ok_run('delete by id', 'delete', $st_id);
	ok(!-e "$configs/$st_id.password", 'delete by id: password gone');
	fails_like('delete unknown', qr/no config has the id or name "analytics"/, 'delete', 'analytics', '-c', $ini);
	my @names = map { (split ' ', $_)[1] } grep { !/^ID/ } split /\n/, ok_run('list after deletes', 'list');
	is_deeply(\@names, [qw(flagpw shop2)], 'list: the remaining configs');
}

# ---------------------------------------------------------------------------
for my $pw (@passwords)
{
	unlike($all_output, qr/\Q$pw\E/, "no output ever contained password $pw");
}
unlike($all_output, qr/masked-Secret/, 'no output ever contained part of a masked password');

done_testing();
