/*
 * my_int.h
 *    The MySQL wing's structures, shared by its files:
 *      my_agent.c   the wing's state, reloads, the janitor, shutdown (mywire.h)
 *      my_client.c  a session: greeting, login, commands, what it carries
 *      my_server.c  an origin connection: connect, login, replies owed
 *      my_pool.c    the MySQL side of a pool (HdMyPool embeds HdPool)
 *      my_stmt.c    prepared statements across origin connections
 *      my_sql.c     what a statement's text does to the session
 *      my_proto.c   the protocol's bytes
 *
 * One owner per state: a client's session state (database, autocommit,
 * carried SETs, pin) is the client's; what an origin connection carries is
 * the server's; my_client.c brings a server to its client's state before
 * it sends the client's command (sync), and my_pool.c resets a server no
 * later client may see as it is (dirty).
 */
#ifndef HD_MY_INT_H
#define HD_MY_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/list.h"
#include "config/configs.h"
#include "config/settings.h"
#include "mywire/my_proto.h"
#include "mywire/my_sql.h"
#include "mywire/mywire.h"
#include "net/conn.h"
#include "pool/pool.h"

typedef struct HdMyClient HdMyClient;
typedef struct HdMyServer HdMyServer;
typedef struct HdMyPool HdMyPool;
typedef struct HdMyStmtDef HdMyStmtDef;

/* The largest command the agent holds (the origin's own max_allowed_packet bounds it too). */
#define HD_MY_MAX_COMMAND (64u * 1024 * 1024)
/* Prepared statements kept per origin connection (max_prepared_stmt_count is global). */
#define HD_MY_SERVER_STMTS_MAX 256
/* Prepared statements one client may have open. */
#define HD_MY_CLIENT_STMTS_MAX 16384
/* MariaDB's extended capabilities the agent passes on (the others change the protocol's shape). */
#define HD_MY_OFFERED_EXT HD_MY_MARIADB_EXTENDED_METADATA

/* A client's output is written at the end of each read from the origin, or at this size. */
#define HD_MY_FLUSH_BYTES (64 * 1024)
/* Carried SETs per session. */
#define HD_MY_SETS_MAX 64

/*
 * The capabilities that change what the origin does or sends: a pool's
 * connections all share them. CLIENT_LONG_PASSWORD is MariaDB's
 * "CLIENT_MYSQL": a client without it is a MariaDB client, with extended
 * capabilities of its own (HD_MY_OFFERED_EXT, a pool's too).
 */
#define HD_MY_VARIANT_CAPS (HD_MY_CLIENT_LONG_PASSWORD | HD_MY_CLIENT_FOUND_ROWS | HD_MY_CLIENT_IGNORE_SPACE | \
	HD_MY_CLIENT_MULTI_STATEMENTS | HD_MY_CLIENT_MULTI_RESULTS | HD_MY_CLIENT_PS_MULTI_RESULTS | \
	HD_MY_CLIENT_DEPRECATE_EOF | HD_MY_CLIENT_LOCAL_FILES)

struct HdMyAgent
{
	struct ev_loop *loop;
	const HdSettings *settings;
	const HdConfigList *configs;
	HdMyRoot	root;
	HdList		pools;			/* HdMyPool.pool.link */
	HdList		clients;		/* HdMyClient.link */
	HdList		dead_clients;
	HdList		dead_servers;
	ev_prepare	reaper;
	uint32_t	next_thread_id;
	uint64_t	next_client_id;
	char		version[128];	/* the greeting's: the last origin's, until one is known a default */
	struct HdMyRsaKey *rsa;		/* caching_sha2_password's key pair, made when first needed */
	/*
	 * What the agent's greeting says of the server (my_client.c): the last
	 * origin greeting seen (a login's, or the probe's before the first
	 * client: a client is greeted once it is known, or the probe failed).
	 */
	bool		origin_known;
	uint32_t	origin_caps;
	uint32_t	origin_ext_caps;
	uint8_t		origin_collation;
	bool		probing;		/* a greeting probe is under way */
	struct HdMyLookups *lookups;	/* other users' password hashes (my_lookup.c) */
	/* counters (SHOW/metrics come later; the log has them) */
	uint64_t	pins;
	uint64_t	diagnostics_refused;
};

/* A statement's text as prepared: shared by the clients that prepared it, per (text, database, settings). */
struct HdMyStmtDef
{
	HdList		link;			/* pool->stmt_defs */
	char	   *key;			/* text \0 database \0 settings */
	size_t		key_len;
	const char *sql;			/* into key */
	size_t		sql_len;
	uint16_t	params;
	uint16_t	columns;
	int			refs;			/* clients' statements and servers' copies */
};

/* A client's prepared statement: the id it knows, the definition, the types it bound last. */
typedef struct HdMyClientStmt
{
	uint32_t	id;
	HdMyStmtDef *def;
	uint8_t    *types;			/* 2 bytes per parameter, from its last execute that sent them */
	bool		has_types;
} HdMyClientStmt;

/* A server's copy of a definition. */
typedef struct HdMyServerStmt
{
	HdMyStmtDef *def;
	uint32_t	id;				/* the origin's */
	uint8_t    *types;			/* the parameter types the origin has for it (sent last); NULL: none */
	uint64_t	last_used;
} HdMyServerStmt;

struct HdMyPool
{
	HdPool		pool;			/* the neutral pool; pool.role is "user/variant/collation" */
	HdMyAgent  *my;
	char		user[128];
	uint32_t	variant;		/* HD_MY_VARIANT_CAPS the clients of this pool negotiated */
	uint32_t	ext_caps;		/* and MariaDB's extended ones (HD_MY_OFFERED_EXT) */
	uint8_t		collation;
	uint8_t		stage1[20];		/* SHA1(password): a native login needs no more */
	bool		has_stage1;
	char	   *password;		/* the config's own user: the config's password; else NULL */
	char		version[128];
	bool		version_known;
	HdList		stmt_defs;
};

/* What a server owes, in order: each entry one reply. */
typedef enum HdMyOwed
{
	HD_MY_OWED_CLIENT,			/* the client's command: the reply goes to the client */
	HD_MY_OWED_SYNC,			/* the agent's own SET / COM_INIT_DB before a client's command */
	HD_MY_OWED_PREPARE,			/* the agent's COM_STMT_PREPARE of a definition the client executes */
	HD_MY_OWED_SETUP,			/* after login or a reset: session_track_state_change */
	HD_MY_OWED_RESET			/* COM_RESET_CONNECTION */
} HdMyOwed;

typedef struct HdMyOwedReply
{
	HdMyOwed	what;
	HdMyReplyKind kind;
	bool		binary;
	HdMyStmtDef *def;			/* HD_MY_OWED_PREPARE */
} HdMyOwedReply;

#define HD_MY_OWED_MAX 80

typedef enum HdMyServerLogin
{
	HD_MY_SLOGIN_GREETING,		/* waiting for the origin's greeting */
	HD_MY_SLOGIN_AUTH,			/* our handshake response sent */
	HD_MY_SLOGIN_SETUP,			/* logged in; the setup statement's reply owed */
	HD_MY_SLOGIN_DONE
} HdMyServerLogin;

struct HdMyServer
{
	HdPoolConn	conn;			/* the neutral pool's view */
	HdMyPool   *pool;
	HdMyAgent  *my;
	HdConn		sock;
	ev_io		read_watcher;
	ev_io		write_watcher;
	ev_timer	connect_timer;
	HdIoBuf		in;
	HdIoBuf		out;
	HdMyServerLogin login;
	uint8_t		auth_seq;		/* the next sequence id of the login exchange */
	uint8_t		nonce[HD_MY_NONCE_BYTES];
	uint32_t	thread_id;		/* the origin's connection id */
	uint32_t	caps;			/* negotiated with the origin */
	HdMyGreeting greeting;		/* the origin's, kept for the login after TLS */
	HdMyClient *client;			/* its holder */
	uint64_t	uses;			/* bumped at each hand-out: "nobody used it since" */
	/* what it carries */
	char		db[256];
	bool		autocommit;
	int			nsets;
	HdMySqlSet *sets;
	bool		dirty;			/* holds state no later client may see: reset before reuse */
	/* replies owed */
	HdMyOwedReply owed[HD_MY_OWED_MAX];
	int			nowed;
	HdMyReply	reply;			/* the reply of owed[0], as it comes */
	bool		reply_started;
	bool		local_infile;	/* the client sends a file: its packets go through until an empty one */
	bool		processing;		/* in process_input(): not re-entered */
	bool		killer;			/* a connection of its own for one KILL QUERY kill_target */
	uint32_t	kill_target;	/* the origin id whose statement it kills */
	int			kills_pending;	/* KILLs of this one's statement not run yet: it is kept */
	bool		release_deferred;	/* released while kills_pending: the pool gets it after */
	bool		paused;			/* reading stopped: its client's output is full */
	/* prepared statements */
	HdMyServerStmt *stmts;
	int			nstmts;
	uint64_t	stmt_clock;
};

typedef enum HdMyClientState
{
	HD_MY_CLIENT_HANDSHAKE,		/* greeting sent, waiting for the handshake response */
	HD_MY_CLIENT_AUTH_SWITCH,	/* asked to authenticate again (switched_to_sha2 says with what) */
	HD_MY_CLIENT_SHA2_FULL,		/* caching_sha2_password: asked for the password itself */
	HD_MY_CLIENT_SHA2_RSA,		/* ... sent the agent's public key: the encrypted password comes */
	HD_MY_CLIENT_ACTIVE,		/* logged in: commands */
	HD_MY_CLIENT_CLOSED
} HdMyClientState;

struct HdMyClient
{
	HdClientSession session;	/* hd_my_client_protocol */
	HdMyAgent  *my;
	HdList		link;			/* my->clients, then my->dead_clients */
	HdPoolWaiter wait;
	HdConn		sock;
	ev_io		read_watcher;
	ev_io		write_watcher;
	HdIoBuf		in;
	HdIoBuf		out;
	HdMyClientState state;
	bool		close_after_flush;
	bool		local;
	bool		tls;			/* its connection is TLS (after its SSLRequest) */
	char		addr[64];
	uint64_t	id;
	uint32_t	thread_id;		/* what its greeting said (the agent's, not an origin's) */
	ev_tstamp	connected_at;
	ev_tstamp	login_started_at;	/* its login began (connect, or COM_CHANGE_USER) */
	ev_tstamp	last_activity;
	uint8_t		nonce[HD_MY_NONCE_BYTES];
	uint8_t		auth_seq;
	bool		switched_to_sha2;	/* the auth switch asked for caching_sha2_password */
	/* another user than the config's: its answer, kept while its hash is looked up (my_lookup.c) */
	bool		looking_up;
	bool		looked_up_again;	/* a failed check read the origin again (the cache may be old) */
	uint8_t		token[20];
	size_t		token_len;
	char	   *plain_password; /* caching_sha2_password's full authentication: what it sent */
	bool		greeted;		/* its greeting went out (it may wait for the probe) */
	uint32_t	ext_offered;	/* MariaDB's extended capabilities its greeting offered */
	/* from its handshake response */
	uint32_t	caps;
	uint32_t	ext_caps;
	uint8_t		collation;
	char		user[128];
	char		config_id[HD_CONFIG_ID_LEN + 1];
	HdMyPool   *pool;
	HdMyServer *server;			/* held */
	double		server_taken_at;	/* ev_time() when it got its server (SHOW STATS) */
	double		sent_at;		/* ev_time() when its command went to the origin */
	/* its session state */
	char		db[256];
	bool		autocommit;
	bool		in_trans;
	uint16_t	status;			/* the last status flags it was sent */
	int			nsets;
	HdMySqlSet *sets;
	const char *pinned;			/* why it keeps its server; NULL: it does not */
	bool		long_data;		/* COM_STMT_SEND_LONG_DATA went to its server: kept until execute */
	/* the command being served: its first byte, what its text does, its sequence */
	int			command;		/* -1: none */
	uint8_t		reply_seq;		/* the sequence id its reply starts with */
	HdMySqlClass cls;
	bool		sent;			/* the command went to the server; its reply is coming */
	bool		syncing;		/* the server is being brought to its state first */
	HdMyClientStmt *exec_stmt;	/* COM_STMT_*: the statement (PREPARE: the new one) */
	bool		prepare_answered;	/* COM_STMT_PREPARE: its OK went to the client */
	bool		state_changed;	/* an OK of this command said the session state changed */
	/* the previous statement's server, for diagnostics (LAST_INSERT_ID(), SHOW WARNINGS) */
	uint32_t	last_thread;	/* its origin connection id (0: none) */
	uint64_t	last_uses;		/* that connection's uses then: nobody used it since if equal */
	/* prepared statements */
	HdMyClientStmt *stmts;
	int			nstmts;
	int			cap_stmts;
	uint32_t	next_stmt_id;
};

/* my_client.c */
/* The config of id in the current list (my->configs), or NULL. */
extern const HdConfig *hd_my_config_by_id(HdMyAgent *my, const char *id);
extern void hd_my_client_close(HdMyClient *client);
extern void hd_my_client_free(HdMyClient *client);
extern void hd_my_client_fatal(HdMyClient *client, uint16_t code, const char *sqlstate,
							   const char *message);
extern void hd_my_client_flush(HdMyClient *client);
/* A server for it (held): its pending command goes on. */
extern void hd_my_client_server_ready(HdMyClient *client);
/* No server for it: the command fails with this error. */
extern void hd_my_client_server_failed(HdMyClient *client, const char *sqlstate,
									   const char *message);
/* A packet of its command's reply, from its server. */
extern int	hd_my_client_reply_packet(HdMyClient *client, const unsigned char *packet,
									  size_t len, const HdMyReply *reply);
/* Its command's reply is complete (or its server is gone: lost). */
extern void hd_my_client_reply_done(HdMyClient *client, const HdMyReply *reply);
extern void hd_my_client_server_lost(HdMyClient *client, const char *why);
/* The agent's SET/COM_INIT_DB/prepare before its command: all answered (ok false: one failed). */
extern void hd_my_client_synced(HdMyClient *client, bool ok, const char *why);
/* The server now asks it for a local file. */
extern void hd_my_client_local_infile(HdMyClient *client);
extern void hd_my_client_resume_reading(HdMyClient *client);

/* my_server.c */
extern HdMyServer *hd_my_server_connect(HdMyPool *pool);
extern void hd_my_server_kill_query(HdMyServer *target);
/* An origin's greeting (a login's or the probe's): what the agent's greeting says from now on. */
extern void hd_my_agent_learn_origin(HdMyAgent *my, const HdMyGreeting *g);
/* Read config's origin greeting (no login), then hd_my_client_greet_waiting(); false: none started. */
extern bool hd_my_probe_greeting(HdMyAgent *my, const HdConfig *config);
extern void hd_my_client_greet_waiting(HdMyAgent *my);
extern void hd_my_server_close(HdMyServer *server, const char *reason);
extern void hd_my_server_free(HdMyServer *server);
extern void hd_my_server_flush(HdMyServer *server);
extern int	hd_my_server_owe(HdMyServer *server, HdMyOwed what, HdMyReplyKind kind, bool binary,
							 HdMyStmtDef *def);
/* Queue a whole command (seq 0) of the agent's own. */
extern int	hd_my_server_command(HdMyServer *server, uint8_t command, const void *arg, size_t len);
extern bool hd_my_server_idle(const HdMyServer *server);
extern int	hd_my_server_reset(HdMyServer *server);
extern void hd_my_server_resume_reading(HdMyServer *server);

/* my_pool.c */
extern HdMyPool *hd_my_pool_get(HdMyAgent *my, const HdConfig *config, const char *user,
								uint32_t variant, uint32_t ext_caps, uint8_t collation);
extern void hd_my_pool_request(HdMyClient *client);
extern void hd_my_pool_release(HdMyClient *client);
extern bool hd_my_pool_take_last(HdMyClient *client);
extern void hd_my_pool_server_ready(HdMyServer *server);
extern void hd_my_pool_server_failed(HdMyPool *pool, HdMyServer *server, const char *sqlstate,
									 const char *message);

/* my_stmt.c */
extern HdMyStmtDef *hd_my_stmt_def(HdMyPool *pool, const char *sql, size_t len,
								   const HdMyClient *client);
extern void hd_my_stmt_def_unref(HdMyStmtDef *def);
extern HdMyClientStmt *hd_my_client_stmt_add(HdMyClient *client, HdMyStmtDef *def);
extern HdMyClientStmt *hd_my_client_stmt_find(HdMyClient *client, uint32_t id);
extern void hd_my_client_stmt_close(HdMyClient *client, uint32_t id);
extern void hd_my_client_stmts_free(HdMyClient *client);
extern HdMyServerStmt *hd_my_server_stmt_find(HdMyServer *server, const HdMyStmtDef *def);
extern int	hd_my_server_stmt_add(HdMyServer *server, HdMyStmtDef *def, uint32_t id);
extern void hd_my_server_stmts_forget(HdMyServer *server);
/* Over the bound: close the least used (COM_STMT_CLOSE, no reply) until there is room for one. */
extern int	hd_my_server_stmts_make_room(HdMyServer *server);

/* Session-state helpers (my_client.c) */
extern int	hd_my_sets_apply(HdMySqlSet **sets, int *nsets, const HdMySqlSet *add, int nadd);

#endif							/* HD_MY_INT_H */
