# PgWire: the TAP tests' one PostgreSQL wire-protocol client, for what psql
# and drivers cannot do on purpose: several clients interleaving messages on
# one origin connection, half-sent or malformed messages, cancel requests at
# chosen moments, the exact bytes of a reply, a login's ParameterStatus.
#
#   use lib dirname(__FILE__);
#   use PgWire;
#   $PgWire::PORT = $aport;                      # the default port
#   %PgWire::LOGIN = (password => $pw);          # w_login's default options
#   my $c = w_login(user => 'app', password => $pw, db => 'main');
#   w_send($c, pq_parse('', 'SELECT 1') . pq_sync());
#   my $r = w_result($c);                        # up to ReadyForQuery
#
# A connection is a hash: sock, buf (bytes read but not consumed), and after
# w_login: ready (logged in) or error (the ErrorResponse's fields), pid and key
# (BackendKeyData), params (ParameterStatus), auth (the authentication codes
# seen), server_verified (SCRAM's server signature checked). A connection
# over something other than a socket (say, openssl s_client's pipes) has
# write (a sub taking bytes) and fill (a sub taking a deadline, returning
# bytes read, '' for none yet, undef at EOF) instead of sock.
#
# Connecting and logging in
#   w_connect(port | path)          a TCP (127.0.0.1) or Unix-domain connection
#   w_login(%o)                     startup and authentication (SCRAM-SHA-256,
#                                   md5, cleartext, trust), up to ReadyForQuery
#   w_login_or_die(%o)              the same, dying unless it succeeds
#   w_login_send / w_login_wait     a login in two halves
#   w_cancel($c)                    a CancelRequest for $c's BackendKeyData
#   w_close($c)                     Terminate, then close
# Sending and reading
#   w_send($c, $bytes)              all of them
#   w_send_some($c, $bytes, $s)     what goes in $s seconds (a peer not reading)
#   w_fill, w_bytes($c, $n)         raw bytes (an SSL answer, say)
#   w_drain($c, %o)                 raw bytes until EOF or silence
#   w_msg($c, $timeout)             one message: (type, body)
#   w_result($c, $timeout)          the replies up to ReadyForQuery, parsed
#   w_query($c, $sql)               a simple Query and its w_result
#   w_replies($c, $nz) / w_exchange($c, $bytes, $nz)
#                                   the exact bytes up to the $nz-th ReadyForQuery
# Messages (bytes)
#   fmsg(type, body), startup_packet(%params), cancel_packet, ssl_request,
#   gssenc_request, pq_query, pq_parse, pq_bind, pq_describe, pq_execute,
#   pq_close, pq_sync, pq_flush, extended_batch (Parse/Bind/Describe/Execute/Sync)
# Reading messages
#   err_fields($body)               an ErrorResponse's or NoticeResponse's fields
#   row_description($body)          a RowDescription's [[name, type oid], ...]
#   split_msgs($bytes)              ([type, body], ...) of whole messages
#   strip_status($bytes)            the messages without ParameterStatus
package PgWire;

use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(hmac_sha256 sha256);
use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(w_connect w_send w_send_some w_fill w_bytes w_drain w_msg w_login w_login_or_die
  w_login_send w_login_wait w_result w_query w_replies w_exchange w_close w_cancel fmsg
  startup_packet cancel_packet ssl_request gssenc_request err_fields row_description split_msgs
  strip_status   pq_query pq_parse pq_bind pq_describe pq_execute pq_sync pq_flush pq_close extended_batch);

# the port w_connect uses when none is given, and w_login's default options
our $PORT;
our %LOGIN;

# A TCP connection to 127.0.0.1 (port: $o{port} or $PORT), or a Unix-domain
# socket ($o{path}); undef if it fails.
sub w_connect
{
	my (%o) = @_;
	my $sock = $o{path}
	  ? IO::Socket::UNIX->new(Peer => $o{path}, Type => IO::Socket::UNIX::SOCK_STREAM(),
		Timeout => 5)
	  : IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $o{port} // $PORT,
		Proto => 'tcp', Timeout => 5);
	return undef unless $sock;
	binmode $sock;
	return { sock => $sock, buf => '' };
}

# Writes all of $bytes; false if the peer is gone.
sub w_send
{
	my ($c, $bytes) = @_;
	return $c->{write}->($bytes) if $c->{write};
	local $SIG{PIPE} = 'IGNORE';
	my $off = 0;
	while ($off < length $bytes)
	{
		my $n = syswrite($c->{sock}, $bytes, length($bytes) - $off, $off);
		return 0 unless $n;
		$off += $n;
	}
	return 1;
}

# Writes $bytes without blocking for more than $seconds; returns how much went.
sub w_send_some
{
	my ($c, $bytes, $seconds) = @_;
	my $deadline = time + $seconds;
	my $off = 0;
	$c->{sock}->blocking(0);
	while ($off < length $bytes && time < $deadline)
	{
		my $n = syswrite($c->{sock}, $bytes, length($bytes) - $off, $off);
		if (!defined $n)
		{
			sleep 0.01;
			next;
		}
		$off += $n;
	}
	$c->{sock}->blocking(1);
	return $off;
}

# 1: read some; 0: EOF or error; undef: nothing before the deadline
sub w_fill
{
	my ($c, $deadline) = @_;
	if ($c->{fill})
	{
		for (;;)
		{
			my $got = $c->{fill}->($deadline);
			return 0 unless defined $got;
			if (length $got)
			{
				$c->{buf} .= $got;
				return 1;
			}
			return undef if time >= $deadline;
		}
	}
	my $left = $deadline - time;
	return undef if $left <= 0;
	return undef unless IO::Select->new($c->{sock})->can_read($left);
	my $n = sysread($c->{sock}, my $chunk, 65536);
	return 0 unless $n;
	$c->{buf} .= $chunk;
	return 1;
}

# $n raw bytes (an SSL answer, say), or undef
sub w_bytes
{
	my ($c, $n, $timeout) = @_;
	my $deadline = time + $timeout;
	while (length $c->{buf} < $n)
	{
		return undef unless w_fill($c, $deadline);
	}
	return substr($c->{buf}, 0, $n, '');
}

# The bytes that come until EOF, $o{idle} seconds without any (default 1),
# $o{timeout} seconds in all (default 10) or $o{want} bytes at least;
# consumed from the connection.
sub w_drain
{
	my ($c, %o) = @_;
	my $deadline = time + ($o{timeout} // 10);
	for (;;)
	{
		last if defined $o{want} && length $c->{buf} >= $o{want};
		my $until = time + ($o{idle} // 1);
		$until = $deadline if $until > $deadline;
		last unless w_fill($c, $until);
	}
	return substr($c->{buf}, 0, length $c->{buf}, '');
}

# One message: (type, body), or ('EOF', '') / ('TIMEOUT', '') / ('BADLEN', '').
sub w_msg
{
	my ($c, $timeout) = @_;
	my $deadline = time + ($timeout // 10);
	for (;;)
	{
		if (length $c->{buf} >= 5)
		{
			my ($type, $len) = unpack('a N', $c->{buf});
			return ('BADLEN', '') if $len < 4;
			if (length $c->{buf} >= $len + 1)
			{
				my $msg = substr($c->{buf}, 0, $len + 1, '');
				return ($type, substr($msg, 5));
			}
		}
		my $r = w_fill($c, $deadline);
		return ('TIMEOUT', '') unless defined $r;
		return ('EOF', '') unless $r;
	}
}

sub w_close
{
	my ($c) = @_;
	w_send($c, fmsg('X', ''));
	close $c->{sock} if $c->{sock};
	return;
}

sub fmsg
{
	my ($type, $body) = @_;
	return $type . pack('N', 4 + length $body) . $body;
}

sub startup_packet
{
	my (%p) = @_;
	my $code = delete $p{_code} // 0x00030000;
	my $order = delete $p{_order} // [];	# these names first, in this order
	my %first = map { $_ => 1 } @$order;
	my @names = (@$order, grep { !$first{$_} } sort keys %p);
	my $body = pack('N', $code) . join('', map { "$_\0$p{$_}\0" } @names) . "\0";
	return pack('N', 4 + length $body) . $body;
}

sub cancel_packet
{
	my ($pid, $key) = @_;
	return pack('N N N N', 16, 80877102, $pid, $key);
}

sub ssl_request { return pack('N N', 8, 80877103); }
sub gssenc_request { return pack('N N', 8, 80877104); }

# Sends a CancelRequest for $c's BackendKeyData (pid, key) on a connection of
# its own (options as w_connect) and returns that connection: the server
# closes it once the cancel is processed (w_msg then says 'EOF'), which is
# what libpq's PQcancel waits for.
sub w_cancel
{
	my ($c, %o) = @_;
	my $k = w_connect(%o) or return undef;
	w_send($k, cancel_packet($c->{pid}, $c->{key}));
	return $k;
}

# An ErrorResponse's (or NoticeResponse's) fields, by their one-letter codes.
sub err_fields
{
	my ($body) = @_;
	my %f;
	for my $field (split /\0/, $body)
	{
		$f{ substr($field, 0, 1) } = substr($field, 1) if length $field;
	}
	return \%f;
}

# A RowDescription's columns: [[name, type oid], ...].
sub row_description
{
	my ($body) = @_;
	my $n = unpack('n', $body);
	my $off = 2;
	my @cols;
	for (1 .. $n)
	{
		my $end = index($body, "\0", $off);
		my $name = substr($body, $off, $end - $off);
		my (undef, undef, $oid) = unpack('N n N', substr($body, $end + 1, 10));
		push @cols, [ $name, $oid ];
		$off = $end + 1 + 18;
	}
	return \@cols;
}

# The whole messages in $bytes: ([type, body], ...); a partial one at the end
# is left out.
sub split_msgs
{
	my ($bytes) = @_;
	my @m;
	my $off = 0;
	while (length($bytes) - $off >= 5)
	{
		my ($type, $len) = unpack('a N', substr($bytes, $off, 5));
		last if $len < 4 || length($bytes) - $off < $len + 1;
		push @m, [ $type, substr($bytes, $off + 5, $len - 4) ];
		$off += $len + 1;
	}
	return @m;
}

# The messages of $bytes without ParameterStatus (the agent sends those when
# it gives an origin connection the client's settings: not part of a reply).
sub strip_status
{
	my ($b) = @_;
	my $out = '';
	while (length($b) >= 5)
	{
		my $n = 1 + unpack('N', substr($b, 1, 4));
		$out .= substr($b, 0, $n) unless substr($b, 0, 1) eq 'S';
		$b = substr($b, $n);
	}
	return $out . $b;
}

# Frontend messages.
sub pq_query { my ($sql) = @_; return fmsg('Q', "$sql\0"); }

# Parse: statement name, text, parameter type OIDs
sub pq_parse
{
	my ($name, $sql, @types) = @_;
	return fmsg('P', "$name\0$sql\0" . pack('n', scalar @types) . join('', map { pack('N', $_) } @types));
}

# Bind: statement, parameters (undef: NULL); unnamed portal unless $portal;
# parameter and result format codes (default none: all text)
sub pq_bind
{
	my ($stmt, $params, $portal, $pformats, $rformats) = @_;
	my @p = @{ $params // [] };
	my @pf = @{ $pformats // [] };
	my @rf = @{ $rformats // [] };
	return fmsg('B', ($portal // '') . "\0$stmt\0" . pack('n', scalar @pf) . join('', map { pack('n', $_) } @pf)
		  . pack('n', scalar @p)
		  . join('', map { defined $_ ? pack('N', length $_) . $_ : pack('N', 0xFFFFFFFF) } @p)
		  . pack('n', scalar @rf) . join('', map { pack('n', $_) } @rf));
}
sub pq_describe { my ($kind, $name) = @_; return fmsg('D', $kind . ($name // '') . "\0"); }
sub pq_close { my ($kind, $name) = @_; return fmsg('C', $kind . ($name // '') . "\0"); }
sub pq_execute { my ($portal, $rows) = @_; return fmsg('E', ($portal // '') . "\0" . pack('N', $rows // 0)); }
sub pq_sync { return fmsg('S', ''); }
sub pq_flush { return fmsg('H', ''); }

# Parse/Bind/Describe/Execute/Sync with the unnamed statement and portal.
sub extended_batch
{
	my ($sql, @params) = @_;
	return pq_parse('', $sql) . pq_bind('', \@params) . pq_describe('P') . pq_execute() . pq_sync();
}

sub scram_hi
{
	my ($password, $salt, $iterations) = @_;
	my $u = hmac_sha256($salt . pack('N', 1), $password);
	my $r = $u;
	for (2 .. $iterations)
	{
		$u = hmac_sha256($u, $password);
		$r ^= $u;
	}
	return $r;
}

# Logs in (SCRAM-SHA-256, md5 or cleartext, whatever is asked): options user,
# password, db, params (more startup parameters), conn (an open connection),
# port, path, timeout, sent (conn is w_login_send()'s: the startup packet and
# the cleartext password are sent already). The returned connection has
# ready => 1, or error. An error with C 'TIMEOUT' after auth_ok: the login
# waits (say, for an origin connection); w_login_wait goes on reading.
sub w_login
{
	my (%o) = (%LOGIN, @_);
	my $user = $o{user} // 'app';
	my $password = $o{password};
	my $c = $o{conn} // w_connect(port => $o{port}, path => $o{path});
	return { error => { C => 'CONNECT', M => "connect failed: $!" } } unless $c;
	return $c if $c->{error};
	w_send($c, startup_packet(user => $user, database => $o{db} // 'main',
		%{ $o{params} // {} })) unless $o{sent};
	my ($first_bare, $salted, $auth_message);
	$c->{auth} = [];
	for (;;)
	{
		my ($type, $body) = w_msg($c, $o{timeout} // 10);
		if ($type eq 'R')
		{
			my $code = unpack('N', $body);
			push @{ $c->{auth} }, $code;
			if ($code == 0)
			{
				$c->{auth_ok} = 1;
				return w_login_wait($c, $o{timeout});
			}
			elsif ($code == 3)
			{
				w_send($c, fmsg('p', "$password\0")) unless $o{sent};
			}
			elsif ($code == 5)
			{
				my $salt = substr($body, 4, 4);
				w_send($c, fmsg('p', 'md5' . md5_hex(md5_hex($password . $user) . $salt) . "\0"));
			}
			elsif ($code == 10)
			{
				if (substr($body, 4) !~ /(?:^|\0)SCRAM-SHA-256\0/)
				{
					$c->{error} = { C => 'AUTHCODE', M => 'no SCRAM-SHA-256 offered' };
					return $c;
				}
				my $nonce = encode_base64(join('', map { chr(int(rand(256))) } 1 .. 18), '');
				$first_bare = "n=,r=$nonce";
				my $first = "n,,$first_bare";
				w_send($c, fmsg('p', "SCRAM-SHA-256\0" . pack('N', length $first) . $first));
			}
			elsif ($code == 11)
			{
				my $server_first = substr($body, 4);
				my %a = map { /^(\w)=(.*)$/s ? ($1, $2) : () } split /,/, $server_first;
				$salted = scram_hi($password, decode_base64($a{s}), $a{i});
				my $client_key = hmac_sha256('Client Key', $salted);
				my $without_proof = "c=biws,r=$a{r}";
				$auth_message = "$first_bare,$server_first,$without_proof";
				my $proof = $client_key ^ hmac_sha256($auth_message, sha256($client_key));
				w_send($c, fmsg('p', "$without_proof,p=" . encode_base64($proof, '')));
			}
			elsif ($code == 12)
			{
				my $server_key = hmac_sha256('Server Key', $salted);
				$c->{server_verified} = substr($body, 4) eq
				  'v=' . encode_base64(hmac_sha256($auth_message, $server_key), '');
			}
			else
			{
				$c->{error} = { C => 'AUTHCODE', M => "authentication code $code" };
				return $c;
			}
		}
		elsif ($type eq 'E')
		{
			$c->{error} = err_fields($body);
			return $c;
		}
		elsif ($type ne 'N')
		{
			$c->{error} = { C => $type, M => "unexpected message $type during login" };
			return $c;
		}
	}
}

# w_login that dies unless the login succeeds; the connection.
sub w_login_or_die
{
	my $c = w_login(@_);
	die 'login failed: ' . ($c->{error}{C} // '?') . ': ' . ($c->{error}{M} // '?') . "\n"
	  unless $c->{ready};
	return $c;
}

# After AuthenticationOk: ParameterStatus, BackendKeyData, up to ReadyForQuery
# (ready => 1) or an ErrorResponse (error), for at most $timeout seconds
# (error C 'TIMEOUT': call it again to wait longer).
sub w_login_wait
{
	my ($c, $timeout) = @_;
	delete $c->{error};
	for (;;)
	{
		my ($type, $body) = w_msg($c, $timeout // 10);
		if ($type eq 'K')
		{
			($c->{pid}, $c->{key}) = unpack('N N', $body);
		}
		elsif ($type eq 'S')
		{
			my ($name, $value) = split /\0/, $body;
			$c->{params}{$name} = $value;
		}
		elsif ($type eq 'Z')
		{
			$c->{ready} = 1;
			return $c;
		}
		elsif ($type eq 'E')
		{
			$c->{error} = err_fields($body);
			return $c;
		}
		elsif ($type ne 'N')
		{
			$c->{error} = { C => $type, M => "unexpected message $type during login" };
			return $c;
		}
	}
}

# The first half of a cleartext login (auth_type = password) that does not
# wait for the server: connects, sends the startup packet and the password
# at once (options as w_login's). Several clients started this way, then
# finished with w_login(conn => $c, sent => 1), log in together.
sub w_login_send
{
	my (%o) = (%LOGIN, @_);
	my $c = w_connect(port => $o{port}, path => $o{path});
	return { error => { C => 'CONNECT', M => "connect failed: $!" } } unless $c;
	w_send($c, startup_packet(user => $o{user} // 'app', database => $o{db} // 'main',
		%{ $o{params} // {} }) . fmsg('p', ($o{password} // '') . "\0"));
	return $c;
}

# Reads replies up to ReadyForQuery (or EOF / timeout): rows (text values,
# undef for NULL), errors and notices (fields), tags, fields (the column names
# of each RowDescription), params (the type OIDs of each
# ParameterDescription), types (the message types in order), msgs (each
# message as [type, body]), status; eof or timeout when it ended so.
sub w_result
{
	my ($c, $timeout) = @_;
	my $r = { rows => [], errors => [], notices => [], tags => [], fields => [],
		params => [], types => '', msgs => [] };
	my $deadline = time + ($timeout // 10);
	for (;;)
	{
		my ($type, $body) = w_msg($c, $deadline - time);
		if (length $type == 1)
		{
			$r->{types} .= $type;
			push @{ $r->{msgs} }, [ $type, $body ];
		}
		if ($type eq 'D')
		{
			my $n = unpack('n', $body);
			my $off = 2;
			my @cols;
			for (1 .. $n)
			{
				my $len = unpack('N', substr($body, $off, 4));
				$off += 4;
				if ($len == 0xFFFFFFFF) { push @cols, undef; next; }
				push @cols, substr($body, $off, $len);
				$off += $len;
			}
			push @{ $r->{rows} }, \@cols;
		}
		elsif ($type eq 'T')
		{
			my $n = unpack('n', $body);
			my $off = 2;
			my @names;
			for (1 .. $n)
			{
				my $end = index($body, "\0", $off);
				push @names, substr($body, $off, $end - $off);
				$off = $end + 1 + 18;
			}
			push @{ $r->{fields} }, \@names;
		}
		elsif ($type eq 't')
		{
			my $n = unpack('n', $body);
			push @{ $r->{params} }, [ unpack("x2 N$n", $body) ];
		}
		elsif ($type eq 'E') { push @{ $r->{errors} }, err_fields($body); }
		elsif ($type eq 'N') { push @{ $r->{notices} }, err_fields($body); }
		elsif ($type eq 'C') { push @{ $r->{tags} }, $body =~ s/\0$//r; }
		elsif ($type eq 'Z') { $r->{status} = $body; return $r; }
		elsif ($type eq 'EOF') { $r->{eof} = 1; return $r; }
		elsif ($type eq 'TIMEOUT') { $r->{timeout} = 1; return $r; }
	}
}

sub w_query
{
	my ($c, $sql, $timeout) = @_;
	w_send($c, pq_query($sql));
	return w_result($c, $timeout);
}

# The exact bytes of the replies up to the $nz-th ReadyForQuery (default 1);
# dies if the connection closes or $timeout (default 60) seconds pass first.
sub w_replies
{
	my ($c, $nz, $timeout) = @_;
	$nz //= 1;
	my $deadline = time + ($timeout // 60);
	my $all = '';
	while ($nz > 0)
	{
		my ($type, $body) = w_msg($c, $deadline - time);
		die 'connection closed' if $type eq 'EOF' || $type eq 'BADLEN';
		die 'no reply in time' if $type eq 'TIMEOUT';
		$all .= fmsg($type, $body);
		$nz-- if $type eq 'Z';
	}
	return $all;
}

# Sends $bytes, then w_replies.
sub w_exchange
{
	my ($c, $bytes, $nz, $timeout) = @_;
	w_send($c, $bytes);
	return w_replies($c, $nz, $timeout);
}

1;
