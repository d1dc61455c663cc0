/*
 * cancel.c
 *    Cancel requests: a client's CancelRequest forwarded to the origin
 *    backend that runs its statement, on a connection of its own.
 *
 * A cancel must hit only the statement it was sent for. The origin's
 * postmaster signals the backend and then closes the cancel connection; a
 * backend that is idle when the signal arrives ignores it. So, as libpq's
 * PQcancel does, the agent reads its cancel connection until the origin
 * closes it, and until then:
 *  - the client's own cancel connection stays open (HD_CLIENT_CANCEL): a
 *    libpq client does not send its next query before PQcancel returns;
 *  - the server it is for serves nobody else and nothing more of the same
 *    client: released, it is held back from the pool (hd_cancel_hold_release,
 *    from pool.c); kept by its client, the client's next messages wait
 *    (server->cancels, checked in client.c).
 * The wait is bounded by server_connect_timeout. A cancel that was sent but
 * not confirmed by then may still land, on whatever the backend runs next:
 * its server is closed rather than reused. One that could not be sent
 * (connect or write failed) cannot land: its server goes on.
 *
 * Lifetimes: the server and the requesting client may close while a cancel
 * is in flight; they say so (hd_cancel_server_gone from hd_server_close,
 * hd_cancel_requester_gone from hd_client_close) and the cancel forgets them.
 * Cancels in flight are on agent->cancels.
 */
#include "pgwire/pooler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "pgwire/proto.h"

typedef struct HdCancel
{
	HdAgent    *agent;
	HdList		link;			/* agent->cancels */
	HdServer   *server;			/* the server it is for; NULL once closed */
	HdClient   *requester;		/* the client's cancel connection; NULL once closed */
	ev_io		watcher;		/* writable: send the packet; then readable: EOF */
	ev_timer	timeout;		/* server_connect_timeout */
	char		packet[16];
	size_t		sent;
	uint32_t	backend_pid;	/* for the log */
} HdCancel;

typedef enum HdCancelOutcome
{
	HD_CANCEL_NOT_SENT,			/* the origin never got it: nothing can land */
	HD_CANCEL_CONFIRMED,		/* the origin closed the connection: it is done */
	HD_CANCEL_UNCONFIRMED		/* sent, but not known to be done: it may still land */
} HdCancelOutcome;

/* Nothing for the server is in flight any more: it may serve again. */
static void
release_hold(HdServer *server)
{
	HdClient   *client = server->client;

	if (server->release_after_cancel)
	{
		server->release_after_cancel = false;
		hd_pool_release(server->pool, &server->conn);
		return;
	}
	if (client == NULL)
		return;
	/* what waited for the cancel: the cache's read-your-writes query, the release */
	hd_server_settle(server);
	/* and its client's next messages, if it still holds the server */
	if (client->state == HD_CLIENT_ACTIVE && client->server == server &&
		!client->paused_for_server)
		hd_client_resume_reading(client);
}

static void
cancel_finish(HdCancel *cancel, HdCancelOutcome outcome)
{
	HdServer   *server = cancel->server;
	HdClient   *requester = cancel->requester;
	struct ev_loop *loop = cancel->agent->loop;

	ev_io_stop(loop, &cancel->watcher);
	ev_timer_stop(loop, &cancel->timeout);
	close(cancel->watcher.fd);
	hd_list_del(&cancel->link);
	if (outcome == HD_CANCEL_UNCONFIRMED)
		hd_warning("cancel request for origin connection %u: not confirmed by the origin "
				   "within server_connect_timeout (%lld ms)%s", cancel->backend_pid,
				   (long long) cancel->agent->settings.server_connect_timeout_ms,
				   server ? "; closing that connection, the cancel could still land" : "");
	free(cancel);

	/* (unlinked first: closing the requester or server does not find it) */
	if (requester)
		hd_client_close(requester);
	if (server)
	{
		server->cancels--;
		if (outcome == HD_CANCEL_UNCONFIRMED)
			hd_server_close(server, "a cancel request for it was not confirmed by the origin");
		else if (server->cancels == 0)
			release_hold(server);
	}
}

static void
cancel_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdCancel   *cancel = w->data;
	char		buf[64];
	ssize_t		n;

	(void) revents;
	if (cancel->sent < sizeof(cancel->packet))
	{
		/* writable: connected (or failed: write says) */
		n = write(w->fd, cancel->packet + cancel->sent, sizeof(cancel->packet) - cancel->sent);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
		{
			hd_warning("could not send a cancel request to origin connection %u: %s",
					   cancel->backend_pid, n < 0 ? strerror(errno) : "nothing written");
			cancel_finish(cancel, HD_CANCEL_NOT_SENT);
			return;
		}
		cancel->sent += (size_t) n;
		if (cancel->sent == sizeof(cancel->packet))
		{
			/* sent: the origin closes the connection once it has signalled the backend */
			ev_io_stop(loop, w);
			ev_io_set(w, w->fd, EV_READ);
			ev_io_start(loop, w);
		}
		return;
	}
	n = read(w->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 0)
		cancel_finish(cancel, HD_CANCEL_CONFIRMED);
	else if (n < 0)
	{
		hd_warning("cancel request for origin connection %u: reading the answer failed: %s",
				   cancel->backend_pid, strerror(errno));
		cancel_finish(cancel, HD_CANCEL_UNCONFIRMED);
	}
	/* (the postmaster sends nothing: bytes are read and ignored) */
}

static void
cancel_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdCancel   *cancel = w->data;

	(void) loop;
	(void) revents;
	cancel_finish(cancel, cancel->sent == sizeof(cancel->packet) ?
				  HD_CANCEL_UNCONFIRMED : HD_CANCEL_NOT_SENT);
}

/*
 * Forward a CancelRequest to the backend of server, which the client it
 * names holds now. The requester's connection is closed once the cancel
 * is done (or could not be sent); until then the server is held.
 */
void
hd_cancel_forward(HdClient *requester, HdServer *server)
{
	HdAgent    *agent = requester->agent;
	char		err[256];
	HdCancel   *cancel;
	int			fd;

	if (server->backend_pid == 0)
	{
		hd_client_close(requester);
		return;
	}
	fd = hd_origin_connect(&server->pool->config, err, sizeof(err));
	if (fd < 0)
	{
		hd_warning("could not send a cancel request to origin connection %u: %s",
				   server->backend_pid, err);
		hd_client_close(requester);
		return;
	}
	cancel = calloc(1, sizeof(HdCancel));
	if (cancel == NULL)
	{
		hd_warning("could not send a cancel request to origin connection %u: out of memory",
				   server->backend_pid);
		close(fd);
		hd_client_close(requester);
		return;
	}
	cancel->agent = agent;
	cancel->server = server;
	cancel->requester = requester;
	cancel->backend_pid = server->backend_pid;
	hd_put_u32(cancel->packet, 16);
	hd_put_u32(cancel->packet + 4, HD_CANCEL_REQUEST_CODE);
	hd_put_u32(cancel->packet + 8, server->backend_pid);
	hd_put_u32(cancel->packet + 12, server->backend_key);
	ev_io_init(&cancel->watcher, cancel_io_cb, fd, EV_WRITE);
	ev_timer_init(&cancel->timeout, cancel_timeout_cb,
				  agent->settings.server_connect_timeout_ms / 1000.0, 0.);
	cancel->watcher.data = cancel->timeout.data = cancel;
	hd_list_append(&agent->cancels, &cancel->link);
	server->cancels++;
	/* nothing more from the requester: it waits for the answer (EOF) */
	requester->state = HD_CLIENT_CANCEL;
	ev_io_stop(agent->loop, &requester->read_watcher);
	ev_io_start(agent->loop, &cancel->watcher);
	ev_timer_start(agent->loop, &cancel->timeout);
}

/*
 * pool.c, releasing a server: true if a cancel for it is in flight; it is
 * then released when the last one is done (release_hold).
 */
bool
hd_cancel_hold_release(HdServer *server)
{
	if (server->cancels == 0)
		return false;
	server->release_after_cancel = true;
	return true;
}

/* The server closed: its cancels go on (the requesters still wait), for nobody. */
void
hd_cancel_server_gone(HdServer *server)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &server->agent->cancels)
	{
		HdCancel   *cancel = hd_container_of(item, HdCancel, link);

		if (cancel->server == server)
			cancel->server = NULL;
	}
	server->cancels = 0;
	server->release_after_cancel = false;
}

/* The requester closed (agent shutdown): nobody to tell when it is done. */
void
hd_cancel_requester_gone(HdClient *requester)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &requester->agent->cancels)
	{
		HdCancel   *cancel = hd_container_of(item, HdCancel, link);

		if (cancel->requester == requester)
			cancel->requester = NULL;
	}
}

/* The agent stops: drop the cancels in flight (after its clients and servers). */
void
hd_cancel_shutdown(HdAgent *agent)
{
	HdList	   *item;

	while ((item = hd_list_first(&agent->cancels)) != NULL)
	{
		HdCancel   *cancel = hd_container_of(item, HdCancel, link);

		cancel->server = NULL;
		cancel->requester = NULL;
		cancel_finish(cancel, HD_CANCEL_CONFIRMED);
	}
}
