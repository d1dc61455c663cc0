/*
 * mywire.h
 *    The MySQL/MariaDB wing: clients that speak the MySQL protocol, pooled
 *    onto origin connections of MySQL configs (configs.h protocol mysql).
 *    This header is what the composition root (agent.c) sees; the wing's
 *    own structures are in my_int.h.
 *
 * The wing is a sibling of pgwire/ and includes nothing of it. It has its
 * own list of pools (a MySQL config's pools: its limit spans them) and of
 * sessions, and reaches the root only through HdMyRoot.
 *
 * Contract:
 *   - hd_my_agent_new(): the wing's state for one agent; the listener of
 *     mysql_listen_port hands its connections to hd_my_client_protocol with
 *     the HdMyAgent as the protocol's agent argument.
 *   - hd_my_agent_configs_changed(): the root reloaded the configs (the list
 *     my points to): pools of changed or deleted configs drain, as the
 *     PostgreSQL side's do.
 *   - hd_my_agent_janitor(now, draining): once a second: the pools'
 *     timeouts, login and idle timeouts of sessions, and, draining, the
 *     sessions between transactions are closed. Returns whether a session
 *     is still busy (the root exits when no protocol is).
 *   - hd_my_agent_shutdown(): every session and origin connection closed.
 *   - hd_my_agent_free(): after shutdown, when the loop has stopped.
 */
#ifndef HD_MYWIRE_H
#define HD_MYWIRE_H

#include <ev.h>
#include <stdbool.h>

#include "config/configs.h"
#include "config/settings.h"
#include "net/client_protocol.h"

struct ssl_ctx_st;

typedef struct HdMyAgent HdMyAgent;

/* What the wing needs of the composition root. */
typedef struct HdMyRoot
{
	void	   *agent;			/* the root's own, passed back below */
	int		   *nclients;		/* every protocol's sessions (max_client_conn) */
	/* over max_client_conn: the session was refused (terminate()) */
	bool		(*refuse_over_limit) (void *agent, HdClientSession *session);
	/* the client-facing TLS context (tls.h), as reloads replace it; NULL inside: no TLS */
	struct ssl_ctx_st *const *tls_ctx;
} HdMyRoot;

extern HdMyAgent *hd_my_agent_new(struct ev_loop *loop, const HdSettings *settings,
								  const HdConfigList *configs, const HdMyRoot *root);
extern void hd_my_agent_configs_changed(HdMyAgent *my);
extern bool hd_my_agent_janitor(HdMyAgent *my, ev_tstamp now, bool draining);
extern void hd_my_agent_shutdown(HdMyAgent *my);
extern void hd_my_agent_free(HdMyAgent *my);

extern const HdClientProtocol hd_my_client_protocol;

#endif							/* HD_MYWIRE_H */
