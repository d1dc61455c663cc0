/*
 * pooler.h
 *    The agent's data path: clients, origin connections ("servers") and the
 *    pools that pair them. One libev loop drives everything.
 *
 *   agent.c   the loop: listener, signals, timers, settings/config reloads
 *   client.c  one client socket: startup, authentication, then forwarding
 *             its messages to the server it holds
 *   server.c  one origin connection: connect, log in, forward its replies
 *   pool.c    per (config, role): idle servers, waiting clients, limits
 *             (pool/pool.h: protocol-neutral)
 *   pg_pool.c the PostgreSQL side of a pool (HdPgPool): its login secrets,
 *             parameters, statements; server.c's and client.c's ends of the
 *             pool's two tables (HdPoolOps, HdPoolWaiterOps)
 *   cancel.c  CancelRequests forwarded to the origin; the server they are
 *             for is held until the origin has processed them
 *   pg_client_protocol.c  the client-protocol driver agent.c's listeners
 *             use (net/client_protocol.h): accept, framing, classification,
 *             errors, ReadyForQuery, idle, over client.c's sessions
 *
 * Bytes are forwarded as they are (never re-encoded). The agent looks only at
 * message types and lengths, and at the few messages it must understand:
 * ReadyForQuery (when a transaction ends the server goes back to the pool),
 * ParameterStatus, BackendKeyData and the authentication exchange.
 *
 * Transaction pooling: a client holds a server from its first message after
 * being idle until the server's ReadyForQuery says idle ('I') with every
 * reply owed (stmt.h) sent, no extended-protocol batch half sent, and its
 * session-state check done (state_check.c). Prepared statements follow the
 * client across servers (prepare.h). In session pooling it gets its server
 * at login (and the backend's real BackendKeyData) and holds it until it
 * disconnects; the server is then reset with DISCARD ALL before anyone else
 * gets it (with the cache, its state is checked after each transaction and
 * the cache may answer it there: cache_request.h). Transaction pooling
 * clients get the agent's own keys.
 */
#ifndef HD_POOLER_H
#define HD_POOLER_H

#include <assert.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"
#include "cache/cache.h"
#include "auth/auth_file.h"
#include "auth/scram.h"
#include "config/configs.h"
#include "net/tcp.h"
#include "base/iobuf.h"
#include "base/list.h"
#include "net/client_protocol.h"
#include "net/listener.h"
#include "pgwire/batch.h"
#include "pgwire/cache_fill.h"
#include "pgwire/cache_request.h"
#include "pool/pool.h"
#include "pgwire/lookup.h"
#include "pgwire/prepare.h"
#include "pgwire/session.h"
#include "config/settings.h"
#include "base/stats.h"
#include "pgwire/stmt.h"
#include "net/conn.h"

typedef struct HdAgent HdAgent;
typedef struct HdPgPool HdPgPool;
typedef struct HdClient HdClient;
typedef struct HdServer HdServer;

/* Stop reading from a peer while the other side has this much unsent. */
#define HD_BACKPRESSURE_BYTES (1024 * 1024)
/* Read at most this much per read() call. */
#define HD_READ_CHUNK 65536
/* Longest client message we accept: PostgreSQL's own limit (PQ_LARGE_MESSAGE_LIMIT). */
#define HD_MAX_CLIENT_MESSAGE (0x3fffffff - 1)
/* PostgreSQL's limit for the other messages (PQ_SMALL_MESSAGE_LIMIT): Describe, Close, ... */
#define HD_MAX_SMALL_MESSAGE 10000
/*
 * The most of one client message the agent holds before it forwards it;
 * larger ones (a bulk INSERT's text, a Bind of a large value, COPY data)
 * stream through to the origin as they arrive (client.c).
 */
#define HD_HOLD_MAX HD_BACKPRESSURE_BYTES
/* What a client may have sent before it is logged in and the agent reads no more. */
#define HD_PRELOGIN_MAX (64 * 1024)

typedef enum HdClientState
{
	HD_CLIENT_STARTUP,			/* waiting for SSLRequest / StartupMessage */
	HD_CLIENT_AUTH,				/* password exchange in progress */
	HD_CLIENT_LOGIN,			/* authenticated; waiting for the pool's parameters (session: its server) */
	HD_CLIENT_ACTIVE,			/* logged in: forwarding */
	HD_CLIENT_CANCEL,			/* sent a CancelRequest: closed once it is done (cancel.c) */
	HD_CLIENT_CLOSED
} HdClientState;

typedef enum HdAuthStep
{
	HD_AUTH_STEP_NONE,
	HD_AUTH_STEP_LOOKUP,		/* waiting for the role's secret (lookup.c) */
	HD_AUTH_STEP_SASL_INITIAL,	/* expecting SASLInitialResponse */
	HD_AUTH_STEP_SASL_FIRST,	/* expecting SASLResponse with client-first */
	HD_AUTH_STEP_SASL_FINAL,	/* expecting SASLResponse */
	HD_AUTH_STEP_MD5,			/* expecting PasswordMessage (md5) */
	HD_AUTH_STEP_PASSWORD,		/* expecting PasswordMessage (cleartext) */
	HD_AUTH_STEP_RECHECK		/* authenticated; waiting for the origin's word (auth_recheck.h) */
} HdAuthStep;

/*
 * What a client needs only while it authenticates (client_auth.c): allocated
 * at its StartupMessage, freed once it is logged in, so that the many idle
 * clients of a pool do not carry it.
 */
typedef struct HdClientAuth
{
	HdScramServer *scram;
	char	   *role_secret;	/* the looked-up secret of a role */
	char	   *stored;			/* what md5/password answers are checked against */
	void		(*done) (HdClient *client);	/* after a successful exchange */
	uint8_t		md5_salt[4];
	char		config_id[HD_CONFIG_ID_LEN + 1];	/* while its role is looked up */
} HdClientAuth;

struct HdClient
{
	HdClientSession session;	/* its protocol (client_protocol.h): hd_pg_client_protocol */
	HdAgent    *agent;
	HdList		link;			/* agent->clients */
	HdPoolWaiter wait;			/* queued for a server (pool.h), or for a login check */
	/* (fields ordered to leave no padding: every idle client carries this) */
	HdConn		sock;			/* its socket, plain or TLS (conn.h) */
	HdClientState state;
	ev_io		read_watcher;
	ev_io		write_watcher;
	HdIoBuf		in;
	HdIoBuf		out;
	HdAuthStep	auth_step;
	bool		close_after_flush;
	bool		paused_for_server;	/* stopped reading: its server's output is full */
	bool		paused_for_output;	/* stopped reading: its own output is full */
	bool		stream_drain;	/* the message streaming now is dropped, not forwarded */
	uint32_t	stream_left;	/* bytes of a large message still to pass on (client.c) */
	bool		local_socket;	/* came in on the Unix-domain socket: no TLS */
	HdClientAuth *auth;			/* during authentication only */
	char		addr[64];		/* peer address, for logs */
	char		user[64];
	char		database[64];
	HdPool	   *pool;
	HdServer   *server;			/* the server it holds, if any */
	ev_tstamp	last_activity;
	ev_tstamp	connected_at;
	ev_tstamp	server_taken_at;	/* when it got the server it holds */
	void	   *admin_state;	/* admin.c's */
	uint32_t	cancel_pid;		/* the BackendKeyData we gave it (real with its own server) */
	uint32_t	cancel_key;
	uint64_t	id;				/* unique in the agent: whose unnamed statement a server has */
	HdClientStmts stmts;		/* its statement names -> pool registry */
	HdUnnamed  *unnamed;		/* its unnamed statement (prepare.h); NULL: none yet */
	HdClassification *unnamed_effect;	/* a tracked SET in its unnamed statement */
	bool		bound_effect;	/* the portal it bound last runs unnamed_effect */
	uint32_t	bound_dealloc_id;	/* the portal it bound last is a rewritten DEALLOCATE */
	HdSettingList settings;		/* session settings to carry (session.h) */
	HdSettingList startup;		/* those its startup packet set: what RESET restores */
	bool		admin;			/* on the admin console (database "hyperdrive") */
	bool		server_synced;	/* the held server has those settings */
	bool		awaiting_setup;	/* waiting for them to be applied */
	bool		pinned;			/* keeps its server until it disconnects */
	const char *pin_reason;
	char	   *pin_detail;		/* a pin_reason made for this client (state_check.c) */
	char		replication[16];	/* startup "replication" value; "" if none */
	uint8_t		cache_step;		/* HD_CSTEP_* for the request at the head of in (cache_request.h) */
	HdBatch		batch;			/* its extended batch and what it waits for (batch.h) */
	HdCacheWaiter cache_waiter;	/* the cache core's: coalescing, read-your-writes (cache.h) */
};

struct HdServer
{
	HdAgent    *agent;
	HdPool	   *pool;			/* an HdPgPool's (hd_pg_pool()) */
	HdPoolConn	conn;			/* in the pool: lists, state (pool.h); once closed: agent->dead_servers */
	HdConn		sock;			/* its socket, plain or TLS per sslmode (conn.h) */
	ev_io		read_watcher;
	ev_io		write_watcher;
	ev_timer	connect_timer;
	HdIoBuf		in;
	HdIoBuf		out;
	HdScramClient *scram;
	bool		scram_verified;	/* the origin proved it knows the secret */
	HdClient   *client;
	HdClient   *dedicated;		/* a replication connection opened for this client */
	uint32_t	backend_pid;
	uint32_t	backend_key;
	char		txn_status;		/* from the last ReadyForQuery */
	HdExpectQueue expect;		/* replies owed to the client, in order (stmt.h) */
	bool		mid_batch;		/* extended-protocol messages sent since the last Sync */
	bool		query_had_error;	/* an error since the last ReadyForQuery */
	bool		ddl_in_txn;		/* DDL ran in the current transaction (prepare.h) */
	bool		verify_resume;	/* the client's shape check ended: resume it after this reply */
	HdServerStmts stmts;		/* registry statements prepared on this connection */
	uint64_t	unnamed_client;	/* whose unnamed statement it holds (client id); 0: nobody's */
	uint32_t	unnamed_gen;	/* and which of that client's */
	HdIoBuf		described_params;	/* a Describe S's ParameterDescription, until its row */
	/* the session-state check (state_check.c) */
	char	   *state_baseline;	/* its state as the agent left it; NULL: not learned yet */
	char	   *state_report;	/* the report of the check in flight */
	char	   *state_error;	/* why the check in flight failed */
	HdSettingList state_tracked;	/* settings the client's own SETs changed since */
	bool		state_tracked_all;	/* and RESET ALL / DISCARD ALL */
	bool		state_dirty;	/* a client sent something since the last check */
	bool		state_prepared;	/* hd_state is prepared on it */
	bool		state_learn;	/* the check in flight learns the baseline */
	bool		state_failed;	/* the check in flight failed */
	bool		state_canceled; /* ... with 57014: a cancel meant for the client's statement? */
	bool		state_retried;	/* the check in flight asks again after such a failure */
	bool		batch_plain;	/* the check may follow this batch's Sync (client.c) */
	HdSettingList settings;		/* session settings applied on this connection */
	HdClassification pending;	/* of the Query running now, applied if it succeeds */
	bool		has_pending;
	bool		setup_failed;	/* the agent's own settings query failed */
	char	   *setup_error;
	ev_tstamp	request_sent_at;	/* first request while nothing was owed */
	uint64_t	transactions;
	bool		ssl_requested;	/* SSLRequest sent, 'S' or 'N' awaited (tls_negotiate.c) */
	uint8_t		cache_op;		/* HD_COP_*: the agent's own cache op runs (cache_fill.h) */
	void	   *cache_state;
	bool		wrote;			/* the client's transaction wrote (CommandComplete tags) */
	bool		origin_fatal;	/* the origin's FATAL went to its client: it says why */
	bool		release_after_cancel;	/* released while cancels were in flight */
	int			cancels;		/* cancel requests for it in flight: held (cancel.c) */
};

/* A server parameter as reported at login (ParameterStatus). */
typedef struct HdParam
{
	char	   *name;
	char	   *value;
} HdParam;

/*
 * A PostgreSQL pool: the neutral pool (pool.h), which the rest of the agent
 * passes around as HdPool *, and what only PostgreSQL's side needs. It embeds
 * HdPool rather than hanging off it so that a pool is one allocation and the
 * many users of the neutral fields (config, stats, lists) stay as they were;
 * hd_pg_pool() gets from one to the other. Every pool pg_pool.c makes is one
 * of these, with hd_pg_pool_ops; code that walks agent->pools, where another
 * protocol's pools will be too, asks hd_pg_pool_of() instead.
 */
struct HdPgPool
{
	HdPool		pool;
	HdAgent    *agent;
	char	   *password;		/* origin password for this role, if known */
	bool		use_keys;		/* else: SCRAM pass-through keys of a client's login */
	unsigned char client_key[HD_SCRAM_KEY_LEN];
	unsigned char server_key[HD_SCRAM_KEY_LEN];
	char	   *md5_secret;		/* else: the role's stored md5 secret */
	bool		has_secret;		/* secret below is valid */
	HdScramSecret secret;		/* what clients' SCRAM proofs are checked against */
	HdStatementRegistry registry;	/* prepared statements of its clients */
	HdParam    *params;			/* ParameterStatus from the first login */
	int			nparams;
	char	   *state_sql;		/* the session-state query (state_check.c) */
	bool		state_with_function;	/* it calls hyperdrive.session_state() */
	bool		state_function_failed;	/* that failed once: the smaller query */
	/* the config's own user's logins, re-checked on the origin (auth_recheck.h) */
	ev_tstamp	auth_proven_at; /* the last origin login with the config's credentials */
	HdList		check_waiting;	/* clients waiting for the check (wait.link) */
	bool		check_running;
	ev_tstamp	check_next_at;	/* after a failed check: not before */
	ev_timer	check_timer;
	HdPgPool   *check;			/* the last check's own pool, if any */
	HdPgPool   *check_of;		/* of a check's pool: the pool it checks for */
	unsigned	check_gen;		/* of a check's pool: its owner's config_gen then */
};

/* The pools' table (the origin driver's log in: pg_origin.c) */
extern const HdPoolOps hd_pg_pool_ops;

/* The PostgreSQL pool of a pool that is one. */
static inline HdPgPool *
hd_pg_pool(const HdPool *pool)
{
	assert(pool->ops == &hd_pg_pool_ops);
	return hd_container_of((HdPool *) pool, HdPgPool, pool);
}

/* The PostgreSQL pool of any pool, or NULL when it is another protocol's. */
static inline HdPgPool *
hd_pg_pool_of(const HdPool *pool)
{
	return pool->ops == &hd_pg_pool_ops ? hd_pg_pool(pool) : NULL;
}

/*
 * A listener of clients and the protocol they speak: agent.c's
 * client_accepted() hands each connection to protocol->accept().
 */
typedef struct HdClientListener
{
	HdListener	listener;
	void	   *agent;			/* the protocol's accept() argument: its wing's agent state */
	const HdClientProtocol *protocol;
} HdClientListener;

struct HdAgent
{
	struct ev_loop *loop;
	char	   *settings_path;
	HdSettings	settings;
	HdConfigList configs;
	HdList		pools;
	HdList		clients;
	int			nclients;
	HdList		controls;		/* control connections for role lookups (lookup.c) */
	HdList		cancels;		/* cancel requests in flight (cancel.c) */
	HdList		dead_clients;	/* closed, freed before the loop blocks */
	HdList		dead_servers;
	ev_prepare	reaper;
	HdClientListener tcp_clients;	/* listen_addr, listen_port */
	HdClientListener unix_clients;	/* unix_socket_dir; not open if unset */
	HdClientListener mysql_clients; /* listen_addr, mysql_listen_port; not open if unset */
	struct HdMyAgent *mysql;	/* the MySQL wing (mywire/mywire.h) */
	ev_signal	sigint_watcher;
	ev_signal	sigterm_watcher;
	ev_signal	sighup_watcher;
	ev_timer	janitor;		/* timeouts, once a second */
	char		configs_dir[4096];
	struct timespec configs_mtime;	/* of configs_dir when last loaded */
	bool		draining;		/* SIGTERM: finish transactions, then exit */
	unsigned char mock_key[HD_SCRAM_KEY_LEN];	/* for mock SCRAM of unknown roles */
	uint32_t	next_cancel_pid;
	uint64_t	next_client_id;
	struct ssl_ctx_st *tls_ctx;	/* client-facing TLS (tls.h); NULL: answer 'N' */
	HdAuthFile	auth_file;		/* the admin console's users (settings auth_file) */
	struct HdMetrics *metrics;	/* metrics.c's listener; NULL when off */
	const struct HdConsoleOps *console;	/* the admin console (ops/admin.c) */
	HdCacheLayer *cache;		/* the cache core's (its store may not be open yet); NULL: no memory */
};

/* agent.c */
extern int	hd_agent_main(int argc, char **argv);
extern HdClient *hd_agent_find_cancel_target(HdAgent *agent, uint32_t pid, uint32_t key);
extern const HdConfig *hd_agent_find_config(HdAgent *agent, const char *name);
/* RELOAD (as SIGHUP): 0, or -1 with why in err (the old settings stay) */
extern int	hd_agent_reload(HdAgent *agent, char *err, size_t errlen);
/* SHUTDOWN (as SIGTERM): no new clients; exit once the transactions end */
extern void hd_agent_drain(HdAgent *agent);
/*
 * Over max_client_conn (this session counted): true once the session was
 * refused (53300, terminate()). Its driver asks when its protocol lets it
 * say so: PostgreSQL at the startup packet, as PostgreSQL does.
 */
extern bool hd_agent_refuse_over_limit(HdAgent *agent, HdClientSession *session);

/* pg_client_protocol.c: PostgreSQL's client-protocol driver */
extern const HdClientProtocol hd_pg_client_protocol;

/* client.c */
extern HdClient *hd_client_accept(HdAgent *agent, int fd, const char *addr);
extern void hd_client_close(HdClient *client);
extern void hd_client_free(HdClient *client);
extern void hd_client_start_auth(HdClient *client);
extern HdClientAuth *hd_client_auth_state(HdClient *client);
extern void hd_client_auth_free(HdClient *client);
extern void hd_client_continue_auth(HdClient *client);
extern void hd_client_login_timeout(HdClient *client);
extern void hd_client_auth_admit(HdClient *client);
extern void hd_client_challenge(HdClient *client, const HdScramSecret *secret,
								HdSecretKind stored_kind, const char *stored,
								void (*done) (HdClient *client));
extern void hd_client_fatal(HdClient *client, const char *sqlstate, const char *message,
							const char *detail);
extern void hd_client_login_done(HdClient *client);
extern void hd_client_server_ready(HdClient *client);
extern void hd_client_flush(HdClient *client);
extern uint32_t hd_random_u32(void);
extern void hd_client_resume_reading(HdClient *client);
/* A statement's shape was checked (prepare.h): the client goes on. */
extern void hd_client_verify_done(HdClient *client);
/*
 * Keep the server for good: log once per client, count it. A client pinned
 * already for a reason the cache lives with (session.h hd_pin_class())
 * takes a reason it does not.
 */
extern void hd_client_pin(HdClient *client, const char *reason);

/* server.c */
extern bool hd_server_owes_nothing(const HdServer *server);
/* Owes nothing, has nothing queued to send, and no cancel of it is in flight. */
extern bool hd_server_quiet(const HdServer *server);
extern void hd_server_emit_synthesized(HdServer *server);
extern HdServer *hd_server_connect(HdPool *pool);
extern HdServer *hd_server_connect_replication(HdPool *pool, HdClient *client);
extern void hd_server_close(HdServer *server, const char *reason);
extern void hd_server_free(HdServer *server);
extern void hd_server_flush(HdServer *server);
extern void hd_server_resume_reading(HdServer *server);
extern void hd_server_settle(HdServer *server);

/* cancel.c */
extern void hd_cancel_forward(HdClient *requester, HdServer *server);
extern bool hd_cancel_hold_release(HdServer *server);
extern void hd_cancel_server_gone(HdServer *server);
extern void hd_cancel_requester_gone(HdClient *requester);
extern void hd_cancel_shutdown(HdAgent *agent);

/*
 * The admin console (database "hyperdrive"): a client session whose messages
 * the console runs instead of forwarding them. ops/admin.c implements it
 * (hd_admin_console, ops/admin.h); agent.c sets agent->console at start, so
 * that pgwire/ never calls into ops/, which sits above it.
 *   start    a client asked for the console's database: authenticate it
 *   process  run what it sent (the password exchange first)
 *   free     it goes: what the console kept for it
 */
typedef struct HdConsoleOps
{
	void		(*start) (HdClient *client);
	void		(*process) (HdClient *client);
	void		(*free) (HdClient *client);
} HdConsoleOps;

/* client.c, after the agent's settings query on its server */
extern void hd_client_setup_done(HdClient *client, const char *error);
/* Name a statement for the client (a Parse): registry entry, client name. -1: out of memory */
extern int	hd_client_register_statement(HdClient *client, const char *name, const char *query,
										 const char *types, size_t types_len);
extern void hd_client_replication_ready(HdClient *client, HdServer *server);

/* state_check.c: the session-state check of pooled origin connections */
/* The name of its prepared statement on the origin (no client may drop it). */
#define HD_STATE_STATEMENT "hd_state"
extern int	hd_state_check_start(HdServer *server, bool learn);
extern void hd_state_check_reply(HdServer *server, char type, const char *msg, size_t total);
extern bool hd_state_check_only_owed(const HdServer *server);
extern void hd_state_note_tracked(HdServer *server, const HdClassification *c);
/* The pool's session-state query (for the cache fill's own check). */
extern const char *hd_state_check_query(HdPool *pool);

/* pg_pool.c: the PostgreSQL side of the pools (the pool itself: pool/pool.h) */
/* The pool of the config's own user (whose password the config holds); NULL for other roles. */
extern HdPool *hd_pg_pool_get(HdAgent *agent, const HdConfig *config, const char *role);
/* Any role's pool, created if needed: the caller sets how it logs in to the origin. */
extern HdPool *hd_pg_pool_get_for_role(HdAgent *agent, const HdConfig *config, const char *role);
/* A pool of its own for a check of owner's login (auth_recheck.h). */
extern HdPgPool *hd_pg_pool_new_check(HdPgPool *owner);
extern bool hd_secret_from_password(const char *password, HdScramSecret *secret);
extern void hd_pg_pool_remember_params(HdPool *pool, const char *name, const char *value);
/*
 * The client needs a server (in LOGIN: the pool's parameters, or in session
 * pooling its server): client->server is set when it got one at once; else
 * it waits (pool.h's ready() or failed() later), or was refused.
 */
extern void hd_client_request_server(HdClient *client);
/* A login of a server succeeded / failed (server NULL: none was made). */
extern void hd_pg_pool_server_ready(HdServer *server);
extern void hd_pg_pool_server_failed(HdPool *pool, HdServer *server, const char *sqlstate,
									 const char *message);

#endif							/* HD_POOLER_H */
