/*
 * lookup.c
 *    See lookup.h.
 */
#include "pgwire/lookup.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "config/conninfo.h"
#include "pgwire/pooler.h"

#define LOOKUP_QUERY "SELECT hyperdrive.get_role_secret($1)"

typedef struct HdLookupRequest
{
	HdList		link;
	char		role[64];
	HdLookupDone done;
	void	   *arg;
} HdLookupRequest;

typedef enum HdControlState
{
	HD_CONTROL_CONNECTING,
	HD_CONTROL_READY,
	HD_CONTROL_BUSY				/* the head request's query is running */
} HdControlState;

/* One control connection per config. */
typedef struct HdControl
{
	HdList		link;			/* agent->controls */
	HdAgent    *agent;
	char		config_id[HD_CONFIG_ID_LEN + 1];
	PGconn	   *conn;
	ev_io		watcher;
	int			watched_fd;
	HdControlState state;
	HdList		requests;		/* FIFO; the head is running when BUSY */
} HdControl;

static void control_cb(struct ev_loop *loop, ev_io *w, int revents);

static void
watch(HdControl *ctl, int events)
{
	int			fd = PQsocket(ctl->conn);

	ev_io_stop(ctl->agent->loop, &ctl->watcher);
	if (fd < 0)
		return;
	ev_io_set(&ctl->watcher, fd, events);
	ctl->watched_fd = fd;
	ev_io_start(ctl->agent->loop, &ctl->watcher);
}

static void
finish_request(HdControl *ctl, HdLookupRequest *req, const char *secret, const char *error)
{
	hd_list_del(&req->link);
	if (req->done)
		req->done(req->arg, secret, error);
	free(req);
	(void) ctl;
}

/* The control connection failed: every waiting request learns why; reconnect on demand. */
static void
control_fail(HdControl *ctl, const char *why)
{
	HdList	   *item;
	char		error[512];

	snprintf(error, sizeof(error), "role lookup on the origin failed: %s", why);
	hd_warning("%s", error);
	ev_io_stop(ctl->agent->loop, &ctl->watcher);
	if (ctl->conn)
		PQfinish(ctl->conn);
	ctl->conn = NULL;
	while ((item = hd_list_first(&ctl->requests)) != NULL)
		finish_request(ctl, hd_container_of(item, HdLookupRequest, link), NULL, error);
}

/* Start the next query if the connection is idle. */
static void
control_kick(HdControl *ctl)
{
	HdList	   *first;
	HdLookupRequest *req;
	const char *params[1];

	if (ctl->state != HD_CONTROL_READY || (first = hd_list_first(&ctl->requests)) == NULL)
		return;
	req = hd_container_of(first, HdLookupRequest, link);
	params[0] = req->role;
	if (!PQsendQueryParams(ctl->conn, LOOKUP_QUERY, 1, NULL, params, NULL, NULL, 0))
	{
		control_fail(ctl, PQerrorMessage(ctl->conn));
		return;
	}
	ctl->state = HD_CONTROL_BUSY;
	watch(ctl, PQflush(ctl->conn) == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static char *
trimmed(const char *message)
{
	char	   *copy = strdup(message ? message : "unknown error");
	size_t		len;

	if (copy == NULL)
		return NULL;
	len = strlen(copy);
	while (len > 0 && (copy[len - 1] == '\n' || copy[len - 1] == ' '))
		copy[--len] = '\0';
	return copy;
}

static void
control_read_results(HdControl *ctl)
{
	PGresult   *res;
	HdLookupRequest *req;
	char	   *secret = NULL;
	char	   *error = NULL;

	if (!PQconsumeInput(ctl->conn))
	{
		control_fail(ctl, PQerrorMessage(ctl->conn));
		return;
	}
	if (PQisBusy(ctl->conn))
		return;
	while ((res = PQgetResult(ctl->conn)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			if (!PQgetisnull(res, 0, 0))
				secret = strdup(PQgetvalue(res, 0, 0));
		}
		else if (PQresultStatus(res) != PGRES_TUPLES_OK && error == NULL)
			error = trimmed(PQresultErrorMessage(res));
		PQclear(res);
	}
	ctl->state = HD_CONTROL_READY;
	req = hd_container_of(hd_list_first(&ctl->requests), HdLookupRequest, link);
	if (error)
	{
		char		message[768];

		snprintf(message, sizeof(message),
				 "role lookup on the origin failed: %s (is the hyperdrive extension installed "
				 "and EXECUTE on hyperdrive.get_role_secret(name) granted to the config's user?)",
				 error);
		hd_warning("%s", message);
		finish_request(ctl, req, NULL, message);
	}
	else
		finish_request(ctl, req, secret, NULL);
	if (secret)
	{
		memset(secret, 0, strlen(secret));
		free(secret);
	}
	free(error);
	watch(ctl, EV_READ);
	control_kick(ctl);
}

static void
control_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdControl  *ctl = w->data;

	(void) loop;
	if (ctl->state == HD_CONTROL_CONNECTING)
	{
		switch (PQconnectPoll(ctl->conn))
		{
			case PGRES_POLLING_READING:
				watch(ctl, EV_READ);
				return;
			case PGRES_POLLING_WRITING:
				watch(ctl, EV_WRITE);
				return;
			case PGRES_POLLING_OK:
				ctl->state = HD_CONTROL_READY;
				watch(ctl, EV_READ);
				control_kick(ctl);
				return;
			default:
				control_fail(ctl, PQerrorMessage(ctl->conn));
				return;
		}
	}
	if ((revents & EV_WRITE) && PQflush(ctl->conn) == 0)
		watch(ctl, EV_READ);
	if (revents & EV_READ)
	{
		if (ctl->state == HD_CONTROL_BUSY)
			control_read_results(ctl);
		else if (!PQconsumeInput(ctl->conn))
			control_fail(ctl, PQerrorMessage(ctl->conn));
	}
}

static int
control_connect(HdControl *ctl, const HdConfig *config)
{
	HdAgent    *agent = ctl->agent;
	char		timeout[24];
	char	   *password = NULL;
	char		err[256];
	HdOriginParams params;

	snprintf(timeout, sizeof(timeout), "%lld",
			 (long long) (agent->settings.server_connect_timeout_ms + 999) / 1000);
	(void) hd_config_read_password(agent->settings.state_dir, config->id, &password, err,
								   sizeof(err));
	hd_origin_params_init(&params, config, "hyperdrive control", password);
	hd_origin_params_add(&params, "connect_timeout", timeout);
	hd_origin_params_end(&params);
	ctl->conn = PQconnectStartParams(params.keys, params.values, 0);
	if (password)
		hd_free_secret(password);
	if (ctl->conn == NULL || PQstatus(ctl->conn) == CONNECTION_BAD ||
		PQsetnonblocking(ctl->conn, 1) != 0)
	{
		control_fail(ctl, ctl->conn ? PQerrorMessage(ctl->conn) : "out of memory");
		return -1;
	}
	ctl->state = HD_CONTROL_CONNECTING;
	watch(ctl, EV_WRITE);
	return 0;
}

static HdControl *
control_for(HdAgent *agent, const HdConfig *config)
{
	HdList	   *item;
	HdList	   *tmp;
	HdControl  *ctl;

	hd_list_foreach_safe(item, tmp, &agent->controls)
	{
		ctl = hd_container_of(item, HdControl, link);
		if (strcmp(ctl->config_id, config->id) == 0)
			return ctl;
	}
	ctl = calloc(1, sizeof(HdControl));
	if (ctl == NULL)
		return NULL;
	ctl->agent = agent;
	snprintf(ctl->config_id, sizeof(ctl->config_id), "%s", config->id);
	hd_list_init(&ctl->requests);
	ev_init(&ctl->watcher, control_cb);
	ctl->watcher.data = ctl;
	hd_list_append(&agent->controls, &ctl->link);
	return ctl;
}

int
hd_lookup_role_secret(HdAgent *agent, const HdConfig *config, const char *role,
					  HdLookupDone done, void *arg)
{
	HdControl  *ctl = control_for(agent, config);
	HdLookupRequest *req;

	if (ctl == NULL || (req = calloc(1, sizeof(HdLookupRequest))) == NULL)
		return -1;
	snprintf(req->role, sizeof(req->role), "%s", role);
	req->done = done;
	req->arg = arg;
	hd_list_append(&ctl->requests, &req->link);
	if (ctl->conn == NULL)
		return control_connect(ctl, config) < 0 ? 0 : 0;	/* a failure already answered */
	control_kick(ctl);
	return 0;
}

void
hd_lookup_cancel(HdAgent *agent, void *arg)
{
	HdList	   *c;
	HdList	   *ctmp;

	hd_list_foreach_safe(c, ctmp, &agent->controls)
	{
		HdControl  *ctl = hd_container_of(c, HdControl, link);
		HdList	   *item;
		HdList	   *tmp;

		hd_list_foreach_safe(item, tmp, &ctl->requests)
		{
			HdLookupRequest *req = hd_container_of(item, HdLookupRequest, link);

			/* a running request stays queued (its result is read) but answers nobody */
			if (req->arg == arg)
				req->done = NULL;
		}
	}
}

static void
control_free(HdControl *ctl)
{
	HdList	   *item;

	ev_io_stop(ctl->agent->loop, &ctl->watcher);
	if (ctl->conn)
		PQfinish(ctl->conn);
	while ((item = hd_list_first(&ctl->requests)) != NULL)
	{
		HdLookupRequest *req = hd_container_of(item, HdLookupRequest, link);

		hd_list_del(&req->link);
		if (req->done)
			req->done(req->arg, NULL, "the config was changed or deleted");
		free(req);
	}
	hd_list_del(&ctl->link);
	free(ctl);
}

void
hd_lookup_forget_config(HdAgent *agent, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->controls)
	{
		HdControl  *ctl = hd_container_of(item, HdControl, link);

		if (strcmp(ctl->config_id, config_id) == 0)
			control_free(ctl);
	}
}

void
hd_lookup_shutdown(HdAgent *agent)
{
	HdList	   *item;

	while ((item = hd_list_first(&agent->controls)) != NULL)
		control_free(hd_container_of(item, HdControl, link));
}
