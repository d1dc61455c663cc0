/*
 * listener.c
 *    See listener.h.
 *
 * Why pause on EMFILE: the pending connection stays in the backlog, so the
 * socket stays readable, and a level-triggered watcher would call accept()
 * again at once, forever, each failure logged. PgBouncer stops accepting
 * for a moment in the same case; so does this.
 */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

/* At most one line a minute about accept() failures that go on. */
#define STARVED_LOG_INTERVAL 60.0

void
hd_listener_init(HdListener *l)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

static int
set_nonblocking(int fd)
{
	int			flags = fcntl(fd, F_GETFL);

	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int
hd_listener_open_tcp(HdListener *l, const char *addr, int port, const char *setting,
					 char *err, size_t errlen)
{
	struct addrinfo hints = {0};
	struct addrinfo *res;
	char		service[16];
	int			on = 1;
	int			rc;
	int			fd;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(service, sizeof(service), "%d", port);
	/* "*" is every address, as in PgBouncer */
	rc = getaddrinfo(strcmp(addr, "*") == 0 ? NULL : addr, service, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not resolve \"%s\" (%s): %s", addr, setting,
				 gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
		set_nonblocking(fd) < 0)
	{
		snprintf(err, errlen, "could not listen on %s:%d: %s (is another process using the "
				 "port? change %s)", addr, port, strerror(errno), setting);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	l->fd = fd;
	return 0;
}

/*
 * Whether a process listens on the socket file: 1 yes, 0 no (a stale
 * file), -1 cannot tell (errno). A full backlog (EAGAIN) is a yes.
 */
static int
unix_socket_answers(const struct sockaddr_un *sa)
{
	int			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int			rc;
	int			saved;

	if (fd < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *) sa, sizeof(*sa));
	saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN || saved == EINPROGRESS)
		return 1;
	if (saved == ECONNREFUSED || saved == ENOENT)
		return 0;
	errno = saved;
	return -1;
}

/* A socket file left at path: removed if stale, else an error. */
static int
clear_unix_path(const struct sockaddr_un *sa, int port, char *err, size_t errlen)
{
	const char *path = sa->sun_path;
	struct stat st;
	int			answers;

	if (lstat(path, &st) < 0)
	{
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "could not check Unix-domain socket file \"%s\": %s", path,
				 strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode))
	{
		snprintf(err, errlen, "\"%s\" exists and is not a socket: remove it, or change "
				 "unix_socket_dir", path);
		return -1;
	}
	answers = unix_socket_answers(sa);
	if (answers != 0)
	{
		if (answers > 0)
			snprintf(err, errlen, "another process is listening on Unix-domain socket \"%s\" "
					 "(another agent, or a PostgreSQL on port %d?): stop it, or change "
					 "unix_socket_dir or listen_port", path, port);
		else
			snprintf(err, errlen, "could not check Unix-domain socket \"%s\": %s", path,
					 strerror(errno));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
	{
		snprintf(err, errlen, "could not remove stale Unix-domain socket file \"%s\": %s",
				 path, strerror(errno));
		return -1;
	}
	hd_info("removed the stale Unix-domain socket file %s (nothing was listening on it)", path);
	return 0;
}

int
hd_listener_open_unix(HdListener *l, const char *dir, int port, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int			n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.%d", dir, port);
	int			fd;

	if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
	{
		snprintf(err, errlen, "unix_socket_dir \"%s\" is too long for a socket path "
				 "(at most %zu bytes with \"/.s.PGSQL.%d\")", dir, sizeof(sa.sun_path) - 1, port);
		return -1;
	}
	if (clear_unix_path(&sa, port, err, errlen) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
	{
		if (errno == EADDRINUSE)	/* another process was quicker */
			snprintf(err, errlen, "another process is listening on Unix-domain socket \"%s\": "
					 "stop it, or change unix_socket_dir or listen_port", sa.sun_path);
		else
			snprintf(err, errlen, "could not create Unix-domain socket \"%s\": %s (does "
					 "unix_socket_dir exist, and may the agent write there?)", sa.sun_path,
					 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* from here on the file is ours: remove it if anything fails */
	if (chmod(sa.sun_path, 0777) < 0 || listen(fd, 1024) < 0 || stat(sa.sun_path, &st) < 0)
	{
		snprintf(err, errlen, "could not listen on Unix-domain socket \"%s\": %s", sa.sun_path,
				 strerror(errno));
		unlink(sa.sun_path);
		close(fd);
		return -1;
	}
	l->fd = fd;
	memcpy(l->path, sa.sun_path, sizeof(l->path));
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Accepting
 */

/* Errors about the one connection being accepted: take the next. */
static bool
transient(int err)
{
	switch (err)
	{
		case EINTR:
		case ECONNABORTED:
		case EPERM:				/* a firewall rule */
			/* Linux passes on network errors of the new connection (accept(2)) */
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
			return true;
		default:
			return false;
	}
}

static void
pause_accepting(HdListener *l, int err)
{
	uint64_t	left_out;

	l->failures++;
	if (!l->starved)
	{
		l->starved = true;
		l->starved_log = (HdLogLimit) {0};
		(void) hd_log_due(&l->starved_log, STARVED_LOG_INTERVAL, &left_out);
		hd_warning("accept() failed for %s: %s; new connections wait in the backlog, retried "
				   "every %g s (too many connections for the open files limit? see max_client_conn)",
				   l->what, strerror(err), HD_ACCEPT_PAUSE);
	}
	else if (hd_log_due(&l->starved_log, STARVED_LOG_INTERVAL, &left_out))
		hd_warning("accept() still fails for %s: %s (%llu failures so far)", l->what,
				   strerror(err), (unsigned long long) l->failures);
	l->paused = true;
	ev_io_stop(l->loop, &l->io);
	ev_timer_set(&l->pause, HD_ACCEPT_PAUSE, 0.);
	ev_timer_start(l->loop, &l->pause);
}

/* The backlog is empty: whatever failed is over. */
static void
caught_up(HdListener *l)
{
	if (!l->starved)
		return;
	hd_info("accepting %s again (%llu accept() calls had failed)", l->what,
			(unsigned long long) l->failures);
	l->starved = false;
	l->failures = 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdListener *l = w->data;

	(void) loop;
	(void) revents;
	for (int i = 0; i < HD_ACCEPT_BATCH; i++)
	{
		struct sockaddr_storage addr;
		socklen_t	addrlen = sizeof(addr);
		int			fd;

		memset(&addr, 0, sizeof(addr));
		fd = accept4(l->fd, (struct sockaddr *) &addr, &addrlen, SOCK_CLOEXEC);
		if (fd < 0)
		{
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				caught_up(l);
			else if (transient(errno))
				continue;
			else
				pause_accepting(l, errno);
			return;
		}
		l->on_accept(l->arg, fd, &addr);
	}
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdListener *l = w->data;

	(void) revents;
	l->paused = false;
	ev_io_start(loop, &l->io);
}

void
hd_listener_start(HdListener *l, struct ev_loop *loop, const char *what, HdAcceptFn on_accept,
				  void *arg)
{
	l->loop = loop;
	l->what = what;
	l->on_accept = on_accept;
	l->arg = arg;
	ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
	ev_timer_init(&l->pause, resume_cb, HD_ACCEPT_PAUSE, 0.);
	l->io.data = l->pause.data = l;
	ev_io_start(loop, &l->io);
}

void
hd_listener_wake(HdListener *l)
{
	if (l->loop == NULL || !l->paused)
		return;
	ev_timer_stop(l->loop, &l->pause);
	resume_cb(l->loop, &l->pause, 0);
}

void
hd_listener_close(HdListener *l)
{
	struct stat st;

	if (l->loop)
	{
		ev_io_stop(l->loop, &l->io);
		ev_timer_stop(l->loop, &l->pause);
		l->loop = NULL;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	/* only our own file: another process may have put its socket there since */
	if (l->path[0] && stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	l->path[0] = '\0';
	l->paused = false;
}
