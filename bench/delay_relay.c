/*
 * delay_relay.c
 *    bench/run's stand-in for a far-away origin on loopback (this kernel has
 *    no netem): a TCP relay that adds a fixed delay to every byte.
 *
 *    delay_relay --target PORT --delay-ms D [--listen PORT] [--max-queued BYTES]
 *
 *    Listens on 127.0.0.1:LISTEN (0, the default: a port the system chooses),
 *    connects each accepted connection to 127.0.0.1:TARGET and forwards bytes
 *    both ways. Prints "listening PORT" on stdout when ready. SIGTERM/SIGINT
 *    stop it.
 *
 * What the delay is, stated once (the scenarios' tables depend on it):
 *  - Each chunk read is delivered D/2 ms after it was read: a round trip
 *    through the relay gains D ms.
 *  - A new connection pays TCP's handshake as well (on loopback the client's
 *    connect() returns at once, and the relay accepts and reaches the origin
 *    at once). Over a real network the client's connect() returns one round
 *    trip after its SYN, so its first bytes reach the server at 1.5 round
 *    trips; the server accepts when the client's ACK arrives, also at 1.5
 *    round trips, so its first bytes (MySQL's greeting: the server speaks
 *    first) reach the client at 2. Here: chunks the client sends in the
 *    connection's first D ms leave at D + D/2, and chunks the origin sends in
 *    its first 1.5 D ms leave at 1.5 D + D/2. (A protocol where the client
 *    speaks first, as PostgreSQL's, sees only the first rule: the server has
 *    nothing to send before the client's first bytes reach it.)
 *  - Order is kept per direction: chunks are queued with their due time and
 *    written in order, never reordered. A half-close (EOF) is forwarded once
 *    the data before it is delivered; a connection is closed when both
 *    directions are done, or at once on an error or a reset.
 *  - A direction stops reading while more than --max-queued bytes (4 MiB)
 *    wait in it (the receiver is slow), and reads again once they are out.
 *
 * Why C: the relay's own latency is in both columns of a direct-versus-agent
 * comparison but not equally (a direct connection crosses it for every login
 * round trip, the agent only for its queries). bench/delay_relay.py, the
 * asyncio relay this replaces, added about a millisecond per crossing under
 * load and its timers rounded up to whole milliseconds (epoll_wait); this one
 * sleeps on a timerfd (nanoseconds) armed for the earliest due chunk, and
 * costs two system calls per chunk forwarded.
 *
 * One thread, epoll, no libraries. Connections are few (a benchmark's
 * clients and the agent's pool), so the earliest due time is found by a scan
 * over the live directions rather than a heap.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536

typedef struct Chunk
{
	struct Chunk *next;
	int64_t		due;			/* CLOCK_MONOTONIC ns */
	size_t		len;
	size_t		off;			/* bytes of it written already */
	bool		eof;			/* no data: the half-close to forward */
	char		data[];
} Chunk;

typedef struct Conn Conn;

/* One direction of one connection: src -> queue -> dst. */
typedef struct Dir
{
	Conn	   *conn;
	int			src;
	int			dst;
	Chunk	   *head;
	Chunk	   *tail;
	size_t		queued;			/* bytes in the queue */
	int64_t		not_before;		/* nothing read before this leaves earlier */
	bool		reading;		/* src is read (not at EOF, not over max_queued) */
	bool		eof_read;		/* src said EOF: never read again */
	bool		blocked;		/* the head is due but dst's buffer is full */
	bool		done;			/* EOF forwarded */
} Dir;

/* What an epoll event's data points at. */
enum
{
	TAG_LISTEN, TAG_TIMER, TAG_SIGNAL, TAG_CLIENT, TAG_ORIGIN
};
typedef struct Tag
{
	int			kind;
	Conn	   *conn;
	uint32_t	events;			/* what epoll watches for (0: not registered) */
} Tag;

struct Conn
{
	Conn	   *prev;
	Conn	   *next;
	int			client;
	int			origin;
	bool		connecting;		/* origin's connect() in progress */
	bool		closed;			/* fds closed; freed after this batch of events */
	Dir			up;				/* client -> origin */
	Dir			down;			/* origin -> client */
	Tag			client_tag;
	Tag			origin_tag;
};

typedef struct Relay
{
	int			ep;
	int			listen_fd;
	int			timer_fd;
	int			signal_fd;
	int			target_port;
	int64_t		half_delay;		/* ns */
	size_t		max_queued;
	Conn	   *conns;
	Conn	   *closed;			/* closed in this batch, freed after it */
	int64_t		armed;			/* the timerfd's due time, 0 when disarmed */
} Relay;

static Tag	listen_tag = {TAG_LISTEN, NULL, EPOLLIN};
static Tag	timer_tag = {TAG_TIMER, NULL, EPOLLIN};
static Tag	signal_tag = {TAG_SIGNAL, NULL, EPOLLIN};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "delay_relay: %s: %s\n", what, strerror(errno));
	exit(2);
}

/*
 * A connection's epoll registration: each socket is watched for reading
 * while its direction reads from it, and for writing while the other
 * direction is blocked on it (or the origin is connecting). A socket with
 * nothing to watch is taken out of epoll: epoll reports a hang-up whatever
 * was asked, and a socket whose EOF was read but not yet forwarded (it is
 * delayed) would report it in every batch.
 */
static void
watch(Relay *r, Conn *c, bool is_client)
{
	int			fd = is_client ? c->client : c->origin;
	Tag		   *tag = is_client ? &c->client_tag : &c->origin_tag;
	Dir		   *from = is_client ? &c->up : &c->down;
	Dir		   *to = is_client ? &c->down : &c->up;
	uint32_t	want = 0;
	struct epoll_event ev = {0};

	if (from->reading && (is_client || !c->connecting))
		want |= EPOLLIN;
	if (to->blocked || (!is_client && c->connecting))
		want |= EPOLLOUT;
	if (want == tag->events)
		return;
	ev.events = want;
	ev.data.ptr = tag;
	if (epoll_ctl(r->ep, want == 0 ? EPOLL_CTL_DEL : tag->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
				  fd, &ev) != 0)
		die("epoll_ctl");
	tag->events = want;
}

static void
rewatch(Relay *r, Conn *c)
{
	watch(r, c, true);
	watch(r, c, false);
}

/* Close a connection's sockets now; its memory goes after this batch of events. */
static void
conn_close(Relay *r, Conn *c)
{
	Dir		   *dirs[2] = {&c->up, &c->down};

	for (int i = 0; i < 2; i++)
		while (dirs[i]->head)
		{
			Chunk	   *next = dirs[i]->head->next;

			free(dirs[i]->head);
			dirs[i]->head = next;
		}
	close(c->client);
	close(c->origin);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->closed = true;
	c->next = r->closed;
	r->closed = c;
}

/* Arm the timerfd for the earliest due head among the directions that wait. */
static void
arm_timer(Relay *r)
{
	int64_t		earliest = 0;
	struct itimerspec its = {0};

	for (Conn *c = r->conns; c; c = c->next)
	{
		Dir		   *dirs[2] = {&c->up, &c->down};

		for (int i = 0; i < 2; i++)
			if (dirs[i]->head && !dirs[i]->blocked && !(dirs[i] == &c->up && c->connecting) &&
				(earliest == 0 || dirs[i]->head->due < earliest))
				earliest = dirs[i]->head->due;
	}
	if (earliest == r->armed)
		return;
	r->armed = earliest;
	if (earliest)
	{
		its.it_value.tv_sec = earliest / 1000000000;
		its.it_value.tv_nsec = earliest % 1000000000;
	}
	if (timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		die("timerfd_settime");
}

/*
 * Write what is due in one direction. Returns false when the connection
 * failed (the caller closes it).
 */
static bool
dir_flush(Relay *r, Dir *d, int64_t now)
{
	d->blocked = false;
	while (d->head && d->head->due <= now)
	{
		Chunk	   *ch = d->head;

		if (ch->eof)
		{
			shutdown(d->dst, SHUT_WR);
			d->done = true;
		}
		else
		{
			ssize_t		n = send(d->dst, ch->data + ch->off, ch->len - ch->off, MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			{
				d->blocked = true;
				break;
			}
			if (n < 0)
				return false;
			ch->off += (size_t) n;
			if (ch->off < ch->len)
			{
				d->blocked = true;
				break;
			}
			d->queued -= ch->len;
			if (!d->reading && !d->eof_read && d->queued <= r->max_queued)
				d->reading = true;
		}
		d->head = ch->next;
		if (!d->head)
			d->tail = NULL;
		free(ch);
	}
	return true;
}

static void
enqueue(Dir *d, Chunk *ch, int64_t now, int64_t half_delay)
{
	ch->due = (now > d->not_before ? now : d->not_before) + half_delay;
	ch->next = NULL;
	if (d->tail)
		d->tail->next = ch;
	else
		d->head = ch;
	d->tail = ch;
}

/* Read what src has into the direction's queue. False: the connection failed. */
static bool
dir_read(Relay *r, Dir *d, int64_t now)
{
	while (d->reading)
	{
		Chunk	   *ch = malloc(sizeof(Chunk) + CHUNK_MAX);
		ssize_t		n;

		if (!ch)
			die("malloc");
		n = recv(d->src, ch->data, CHUNK_MAX, 0);
		if (n < 0)
		{
			free(ch);
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		if (n > 0 && n < CHUNK_MAX / 2)
		{
			/* queued chunks hold what was read, not a 64 KiB buffer each */
			Chunk	   *small = realloc(ch, sizeof(Chunk) + (size_t) n);

			if (small)
				ch = small;
		}
		ch->len = (size_t) n;
		ch->off = 0;
		ch->eof = n == 0;
		enqueue(d, ch, now, r->half_delay);
		if (n == 0)
		{
			d->reading = false;
			d->eof_read = true;
			return true;
		}
		d->queued += (size_t) n;
		if (d->queued > r->max_queued)
			d->reading = false;
		if ((size_t) n < CHUNK_MAX)
			return true;
	}
	return true;
}

static void
accept_all(Relay *r)
{
	for (;;)
	{
		int			fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int			one = 1;
		struct sockaddr_in sin = {0};
		Conn	   *c;
		int64_t		now = now_ns();

		if (fd < 0)
		{
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE)
			{
				perror("delay_relay: accept");
				return;
			}
			die("accept");
		}
		c = calloc(1, sizeof(Conn));
		if (!c)
			die("calloc");
		c->client = fd;
		c->origin = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->origin < 0)
			die("socket");
		setsockopt(c->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(c->origin, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t) r->target_port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c->connecting = true;
		if (connect(c->origin, (struct sockaddr *) &sin, sizeof(sin)) == 0)
			c->connecting = false;
		else if (errno != EINPROGRESS)
		{
			fprintf(stderr, "delay_relay: connect to 127.0.0.1:%d: %s\n", r->target_port,
					strerror(errno));
			close(c->origin);
			close(c->client);
			free(c);
			continue;
		}
		c->up = (Dir) {.conn = c, .src = c->client, .dst = c->origin, .reading = true,
		.not_before = now + 2 * r->half_delay};
		c->down = (Dir) {.conn = c, .src = c->origin, .dst = c->client, .reading = true,
		.not_before = now + 3 * r->half_delay};
		c->client_tag = (Tag) {TAG_CLIENT, c, 0};
		c->origin_tag = (Tag) {TAG_ORIGIN, c, 0};
		c->next = r->conns;
		if (r->conns)
			r->conns->prev = c;
		r->conns = c;
		rewatch(r, c);
	}
}

/*
 * Write what is due in both directions (what is due already goes now, not at
 * a timer's wake-up later: --delay-ms 0), then close the connection if it
 * failed (!ok) or both directions are done, else watch what it waits for.
 */
static void
conn_settle(Relay *r, Conn *c, int64_t now, bool ok)
{
	if (ok && !c->connecting && c->up.head && !c->up.blocked && c->up.head->due <= now)
		ok = dir_flush(r, &c->up, now);
	if (ok && c->down.head && !c->down.blocked && c->down.head->due <= now)
		ok = dir_flush(r, &c->down, now);
	if (!ok || (c->up.done && c->down.done))
		conn_close(r, c);
	else
		rewatch(r, c);
}

/* The timer: everything due, in every connection. */
static void
flush_due(Relay *r)
{
	int64_t		now = now_ns();
	Conn	   *next;

	for (Conn *c = r->conns; c; c = next)
	{
		next = c->next;
		conn_settle(r, c, now, true);
	}
}

/* A socket event on a connection. */
static void
conn_event(Relay *r, Conn *c, bool is_client, uint32_t events)
{
	int64_t		now = now_ns();
	int			fd = is_client ? c->client : c->origin;
	Dir		   *from = is_client ? &c->up : &c->down;
	Dir		   *to = is_client ? &c->down : &c->up;
	bool		ok = true;

	if (!is_client && c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
	{
		int			err = 0;
		socklen_t	len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
		{
			fprintf(stderr, "delay_relay: connect to 127.0.0.1:%d: %s\n", r->target_port,
					strerror(err ? err : errno));
			conn_close(r, c);
			return;
		}
		c->connecting = false;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ok = from->reading ? dir_read(r, from, now) : (events & EPOLLERR) == 0;
	if (ok && (events & EPOLLOUT) && to->blocked)
		ok = dir_flush(r, to, now);
	conn_settle(r, c, now, ok);
}

static void
parse_args(Relay *r, int argc, char **argv)
{
	double		delay_ms = -1;
	int			listen_port = 0;

	r->target_port = 0;
	r->max_queued = 4 << 20;
	for (int i = 1; i < argc; i++)
	{
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--target") == 0 && v)
			r->target_port = atoi(v), i++;
		else if (strcmp(argv[i], "--delay-ms") == 0 && v)
			delay_ms = atof(v), i++;
		else if (strcmp(argv[i], "--listen") == 0 && v)
			listen_port = atoi(v), i++;
		else if (strcmp(argv[i], "--max-queued") == 0 && v)
			r->max_queued = (size_t) atol(v), i++;
		else
		{
			fprintf(stderr, "usage: delay_relay --target PORT --delay-ms D [--listen PORT] "
					"[--max-queued BYTES]\n");
			exit(2);
		}
	}
	if (r->target_port <= 0 || r->target_port > 65535 || delay_ms < 0 ||
		listen_port < 0 || listen_port > 65535)
	{
		fprintf(stderr, "delay_relay: --target (1-65535) and --delay-ms (>= 0) are required\n");
		exit(2);
	}
	r->half_delay = (int64_t) (delay_ms * 1e6 / 2);
	r->listen_fd = listen_port;	/* the port, until main() opens the socket */
}

int
main(int argc, char **argv)
{
	Relay		r = {0};
	struct sockaddr_in sin = {0};
	socklen_t	len = sizeof(sin);
	int			one = 1;
	sigset_t	mask;
	struct epoll_event ev = {0};

	parse_args(&r, argc, argv);
	/* the default 50 µs of timer slack is 1 % of a 10 ms round trip, each way */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t) r.listen_fd);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r.listen_fd < 0)
		die("socket");
	setsockopt(r.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(r.listen_fd, (struct sockaddr *) &sin, sizeof(sin)) != 0)
		die("bind");
	if (listen(r.listen_fd, 1024) != 0)
		die("listen");
	if (getsockname(r.listen_fd, (struct sockaddr *) &sin, &len) != 0)
		die("getsockname");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	r.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	r.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (r.signal_fd < 0 || r.timer_fd < 0 || r.ep < 0)
		die("signalfd/timerfd/epoll");
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(r.ep, EPOLL_CTL_ADD, r.listen_fd, &ev) != 0)
		die("epoll_ctl");
	ev.data.ptr = &timer_tag;
	if (epoll_ctl(r.ep, EPOLL_CTL_ADD, r.timer_fd, &ev) != 0)
		die("epoll_ctl");
	ev.data.ptr = &signal_tag;
	if (epoll_ctl(r.ep, EPOLL_CTL_ADD, r.signal_fd, &ev) != 0)
		die("epoll_ctl");

	printf("listening %d\n", ntohs(sin.sin_port));
	fflush(stdout);

	for (;;)
	{
		struct epoll_event events[64];
		int			n = epoll_wait(r.ep, events, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++)
		{
			Tag		   *tag = events[i].data.ptr;

			if (tag->kind == TAG_LISTEN)
				accept_all(&r);
			else if (tag->kind == TAG_SIGNAL)
				return 0;
			else if (tag->kind == TAG_TIMER)
			{
				uint64_t	expirations;

				if (read(r.timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
					die("read timerfd");
				r.armed = 0;
				flush_due(&r);
			}
			else if (!tag->conn->closed)
				conn_event(&r, tag->conn, tag->kind == TAG_CLIENT, events[i].events);
		}
		while (r.closed)
		{
			Conn	   *next = r.closed->next;

			free(r.closed);
			r.closed = next;
		}
		arm_timer(&r);
	}
}
