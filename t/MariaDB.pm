# MariaDB: a throwaway MariaDB server for the TAP tests, as
# PostgreSQL::Test::Cluster is for PostgreSQL.
#
#   use lib dirname(__FILE__);
#   use MariaDB;
#   my $my = MariaDB->new('origin');
#   $my->init(ssl => 1);            # mariadb-install-db into a fresh tempdir
#   $my->start;                     # on a free port in 3400-3499, 127.0.0.1
#   $my->sql("CREATE USER u IDENTIFIED BY 'pw'");   # as root over the socket
#   $my->create_app_db('pw');       # database shopdb, user app@127.0.0.1 owning it
#   # $my->port, $my->socket, $my->ssl_ca (with ssl => 1), $my->log
#   $my->restart; $my->kill9; $my->stop;
#
# The server runs with --no-defaults (nothing of a system MariaDB's
# configuration applies) on 127.0.0.1 only, with root@localhost without a
# password (tests only). It runs as the test's user (postgres under prove,
# the TAP tests never run as root); only when run as root is it started
# with --user=mysql, its directory given to that user. Whatever happens,
# a server started here is stopped when the test ends (END and DESTROY).
#
# Ports: the first port of 3400-3499 that nothing listens on; a server
# that cannot bind it (another test took it meanwhile) is started again on
# the next one.
package MariaDB;

use strict;
use warnings;

use Carp;
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our $MARIADBD = $ENV{MARIADBD} // '/usr/sbin/mariadbd';
our $FIRST_PORT = 3400;
our $LAST_PORT = 3499;

# the servers started and not stopped, for END
my %running;

# A server named $name (its directory, log and messages say it); nothing
# is made until init.
sub new
{
	my ($class, $name) = @_;
	croak "MariaDB->new needs a name" unless defined $name && length $name;
	return bless { name => $name }, $class;
}

# mariadb-install-db into a fresh directory under the test's tempdir.
# Options:
#   ssl => 1      a self-signed CA and a server certificate for 127.0.0.1
#                 and localhost (openssl), the server started with them
#   extra => [ ]  more mariadbd options, e.g. '--max-connections=20'
sub init
{
	my ($self, %o) = @_;
	my $base = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir("mariadb_$self->{name}"));
	$self->{base} = $base;
	$self->{datadir} = "$base/data";
	$self->{extra} = $o{extra} // [];
	$self->{log} = File::Spec->rel2abs("$PostgreSQL::Test::Utils::log_path/mariadb_$self->{name}.log");
	# a Unix socket path has at most 107 bytes: a short directory if need be
	my $sockdir = length("$base/mysqld.sock") < 100 ? $base
	  : File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir_short());
	$self->{socket} = "$sockdir/mysqld.sock";
	$self->{pidfile} = "$base/mysqld.pid";
	$self->_make_certs if $o{ssl};
	if ($> == 0)
	{
		# mariadbd --user=mysql: its files must be the mysql user's, and so
		# must the log's file (opened after it switched)
		$self->{log} = "$base/error.log";
		_run_or_die("giving $base to mysql", [ 'chown', '-R', 'mysql:mysql', $base, $sockdir ]);
	}
	my @cmd = ('mariadb-install-db', '--no-defaults', "--datadir=$self->{datadir}",
		'--auth-root-authentication-method=normal', '--skip-test-db',
		($> == 0 ? ('--user=mysql') : ()));
	_run_or_die("mariadb-install-db for $self->{name}", \@cmd);
	return $self;
}

# Starts it and waits until it accepts connections (croaks if it does not
# within 60 s, with the end of its log).
sub start
{
	my ($self) = @_;
	croak "MariaDB $self->{name}: init first" unless $self->{datadir};
	croak "MariaDB $self->{name}: already running" if $self->{h};
	for my $try (1 .. 10)
	{
		$self->{port} //= _free_port();
		my $offset = -s $self->{log} // 0;
		my @cmd = ($MARIADBD, '--no-defaults', "--datadir=$self->{datadir}",
			"--socket=$self->{socket}", "--port=$self->{port}", '--bind-address=127.0.0.1',
			"--log-error=$self->{log}", "--pid-file=$self->{pidfile}", '--skip-name-resolve',
			# small: other servers share the machine
			'--innodb-buffer-pool-size=32M', '--performance-schema=OFF',
			($> == 0 ? ('--user=mysql') : ()),
			@{ $self->{ssl_args} // [] }, @{ $self->{extra} });
		$self->{h} = IPC::Run::start(\@cmd, '<', \undef, '>>', $self->{log}, '2>&1');
		$running{$self} = $self;
		my $up = $self->_wait_up(60);
		return $self if $up > 0;
		my $log = _slurp($self->{log}, $offset);
		$self->_forget;
		if ($up < 0 && $log =~ /Address already in use|Bind on TCP\/IP port/)
		{
			# someone took the port since it was found free: the next one
			delete $self->{port};
			next;
		}
		croak "MariaDB $self->{name} did not start on port $self->{port}:\n" . substr($log, -3000);
	}
	croak "MariaDB $self->{name}: no free port in $FIRST_PORT-$LAST_PORT";
}

# Stops it (a clean shutdown: SIGTERM, then waits); nothing if not running.
sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{h}->signal('TERM');
	my $deadline = time + 60;
	usleep(50_000) while $self->_alive && time < $deadline;
	$self->{h}->kill_kill if $self->_alive;
	$self->_forget;
	return;
}

# SIGKILL (a crash): the next start recovers.
sub kill9
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{h}->signal('KILL');
	usleep(20_000) while $self->_alive;
	$self->_forget;
	return;
}

sub restart
{
	my ($self) = @_;
	$self->stop;
	return $self->start;
}

sub port { return $_[0]{port}; }
sub socket { return $_[0]{socket}; }
sub log { return $_[0]{log}; }
sub name { return $_[0]{name}; }
sub datadir { return $_[0]{datadir}; }
# the CA that signed the server's certificate (ssl => 1), for VERIFY_CA
sub ssl_ca { return $_[0]{ssl_ca}; }

# Runs $sql (one or more statements) with the mariadb client as root over
# the socket; returns its output (tab-separated rows, no column names),
# dies with the client's error if it fails. Options: database => NAME.
sub sql
{
	my ($self, $sql, %o) = @_;
	croak "MariaDB $self->{name}: not running" unless $self->{h};
	my ($out, $err) = ('', '');
	my @cmd = ('mariadb', '--no-defaults', '--batch', '--skip-column-names', '-uroot',
		"--socket=$self->{socket}", (defined $o{database} ? ($o{database}) : ()));
	IPC::Run::run(\@cmd, '<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(120))
	  or croak "MariaDB $self->{name}: SQL failed: $err(SQL: " . substr($sql, 0, 500) . ')';
	return $out;
}

# The tests' origin database: shopdb, and user app\@127.0.0.1 with the
# password given and every right on shopdb.
sub create_app_db
{
	my ($self, $password) = @_;
	return $self->sql(qq{CREATE DATABASE shopdb; CREATE USER 'app'\@'127.0.0.1' IDENTIFIED BY '$password';
		GRANT ALL ON shopdb.* TO 'app'\@'127.0.0.1';});
}

# Whether it is running (reaps it if not).
sub _alive
{
	my ($self) = @_;
	return 0 unless $self->{h};
	$self->{h}->reap_nb;
	return defined $self->{h}{KIDS}[0]{RESULT} ? 0 : 1;
}

# 1 once a client connects over the socket, -1 if it exited, 0 on time out.
sub _wait_up
{
	my ($self, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return -1 unless $self->_alive;
		if (-S $self->{socket})
		{
			my $h = IPC::Run::start([ 'mariadb-admin', '--no-defaults', '-uroot',
				"--socket=$self->{socket}", 'ping' ], '<', \undef, '>', \my $o, '2>', \my $e);
			$h->finish;
			return 1 if $? == 0;
		}
		usleep(100_000);
	}
	return 0;
}

sub _forget
{
	my ($self) = @_;
	if ($self->{h})
	{
		$self->{h}->kill_kill if $self->_alive;
		eval { $self->{h}->finish };
	}
	delete $self->{h};
	delete $running{$self};
	return;
}

# A self-signed CA, and a key and certificate signed by it for CN
# localhost with 127.0.0.1 as an alternative name.
sub _make_certs
{
	my ($self) = @_;
	my $d = $self->{base};
	_run_or_die("making a CA", [ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
		'-days', '2', '-subj', '/CN=hyperdrive test CA', '-keyout', "$d/ca-key.pem", '-out', "$d/ca.pem" ]);
	_run_or_die("making the server's key", [ 'openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
		'-subj', '/CN=localhost', '-keyout', "$d/server-key.pem", '-out', "$d/server.csr" ]);
	open my $ext, '>', "$d/server.ext" or croak "$d/server.ext: $!";
	print $ext "subjectAltName = DNS:localhost, IP:127.0.0.1\n";
	close $ext;
	_run_or_die("signing the server's certificate", [ 'openssl', 'x509', '-req', '-in', "$d/server.csr",
		'-CA', "$d/ca.pem", '-CAkey', "$d/ca-key.pem", '-CAcreateserial', '-days', '2',
		'-extfile', "$d/server.ext", '-out', "$d/server-cert.pem" ]);
	$self->{ssl_ca} = "$d/ca.pem";
	$self->{ssl_args} = [ "--ssl-ca=$d/ca.pem", "--ssl-cert=$d/server-cert.pem",
		"--ssl-key=$d/server-key.pem" ];
	return;
}

# The first port of the range nothing listens on.
sub _free_port
{
	for my $port ($FIRST_PORT .. $LAST_PORT)
	{
		next if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
		# and nothing holds it without listening yet
		my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
			Proto => 'tcp', ReuseAddr => 0, Listen => 1) or next;
		close $s;
		return $port;
	}
	croak "no free port in $FIRST_PORT-$LAST_PORT";
}

sub _run_or_die
{
	my ($what, $cmd) = @_;
	my $out = '';
	IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>&1', IPC::Run::timeout(120))
	  or croak "$what failed (@$cmd):\n$out";
	return;
}

sub _slurp
{
	my ($path, $offset) = @_;
	open my $fh, '<', $path or return '';
	seek $fh, $offset // 0, 0;
	local $/;
	my $text = <$fh> // '';
	close $fh;
	return $text;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $?);
	$self->stop if $self->{h};
	return;
}

END
{
	local $?;
	$_->stop for values %running;
}

1;
