/*
 * client_auth.c
 *    Authenticating a client: the password exchange the settings ask for.
 *
 * auth_type = scram-sha-256 (default): SASL with SCRAM-SHA-256, checked
 * against a secret built from the config's password; md5 and password as
 * PostgreSQL does them. A role the agent has no password for gets a mock
 * SCRAM exchange that fails exactly like a wrong password, so a client
 * cannot tell which roles exist. Failures answer 28P01 "password
 * authentication failed for user ...", as PostgreSQL does.
 *
 * client_login_timeout bounds everything before a client is logged in: the
 * janitor (agent.c) calls hd_client_login_timeout() for a client that has
 * not got there in time.
 */
#include "pgwire/pooler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sqlstate.h"
#include "pgwire/auth_recheck.h"
#include "base/log.h"
#include "pgwire/proto.h"

/* The client's authentication state, allocated on first use; NULL: out of memory. */
HdClientAuth *
hd_client_auth_state(HdClient *client)
{
	if (client->auth == NULL)
		client->auth = calloc(1, sizeof(HdClientAuth));
	return client->auth;
}

/* The exchange is over (or the client gone): forget it, secrets first. */
void
hd_client_auth_free(HdClient *client)
{
	HdClientAuth *auth = client->auth;

	if (auth == NULL)
		return;
	if (auth->scram)
		hd_scram_server_free(auth->scram);
	if (auth->role_secret)
		hd_free_secret(auth->role_secret);
	if (auth->stored)
		hd_free_secret(auth->stored);
	free(auth);
	client->auth = NULL;
}

uint32_t
hd_random_u32(void)
{
	uint32_t	value = 0;

	(void) hd_random_bytes((unsigned char *) &value, sizeof(value));
	return value;
}

static void
auth_fail(HdClient *client, const HdAuthError *err)
{
	if (err->log_detail[0])
		hd_info("client %s: authentication of %s failed: %s", client->addr, client->user,
				err->log_detail);
	hd_client_fatal(client, err->sqlstate[0] ? err->sqlstate : HD_SQLSTATE_INVALID_PASSWORD,
					err->message[0] ? err->message : "password authentication failed",
					err->detail[0] ? err->detail : NULL);
}

/* Authentication succeeded: log in now if the pool knows the origin's parameters. */
static bool attach_role_pool(HdClient *client);

static void
auth_done(HdClient *client)
{
	void		(*done) (HdClient *client) = client->auth ? client->auth->done : NULL;

	if (done)
	{
		hd_client_auth_free(client);
		client->auth_step = HD_AUTH_STEP_NONE;
		done(client);			/* the admin console's login */
		return;
	}
	if (client->pool == NULL && !attach_role_pool(client))
		return;
	/* the config's own user: only while the origin still lets it in (auth_recheck.h) */
	if (hd_auth_recheck_wait(client))
		return;
	hd_client_auth_admit(client);
}

/* Authenticated (and, for the config's own user, let in by the origin): log in. */
void
hd_client_auth_admit(HdClient *client)
{
	/* the exchange is over (the pool took what it needs): keep none of it */
	hd_client_auth_free(client);
	hd_send_auth(&client->out, HD_AUTHREQ_OK, NULL, 0);
	client->auth_step = HD_AUTH_STEP_NONE;
	if (client->replication[0])
	{
		/* its own origin connection, opened with the same replication mode */
		client->state = HD_CLIENT_LOGIN;
		hd_client_flush(client);
		if (client->state == HD_CLIENT_LOGIN &&
			hd_server_connect_replication(client->pool, client) == NULL &&
			client->state == HD_CLIENT_LOGIN)
			hd_client_fatal(client, client->pool->last_sqlstate[0] ? client->pool->last_sqlstate : HD_SQLSTATE_UNABLE_TO_CONNECT,
							client->pool->last_error ? client->pool->last_error :
							"could not connect to the origin", NULL);
		return;
	}
	if (client->pool->params_known && !hd_pool_server_at_login(client->pool))
	{
		hd_client_login_done(client);
		return;
	}
	/*
	 * The first origin connection brings them (or the reason it failed). In
	 * session pooling the client takes its server now: its BackendKeyData is
	 * that backend's (the pool finishes the login when it waited).
	 */
	client->state = HD_CLIENT_LOGIN;
	hd_client_flush(client);
	if (client->state == HD_CLIENT_LOGIN)
		hd_client_request_server(client);
	if (client->state == HD_CLIENT_LOGIN && client->server)
		hd_client_login_done(client);
}

/*
 * Ask for the password the settings say: SCRAM checked against `secret`,
 * md5/password against `stored` (the plaintext or md5 secret; NULL: doomed).
 * Without a secret, a mock SCRAM exchange that fails exactly like a wrong
 * password. On success, done(client) runs (NULL: the pooler's login).
 */
void
hd_client_challenge(HdClient *client, const HdScramSecret *secret, HdSecretKind stored_kind,
					const char *stored, void (*done) (HdClient *client))
{
	HdAgent    *agent = client->agent;
	static const char mechanisms[] = HD_SCRAM_MECHANISM "\0";
	HdClientAuth *auth = hd_client_auth_state(client);

	client->state = HD_CLIENT_AUTH;
	if (auth == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	auth->done = done;
	if (stored && auth->stored == NULL && (auth->stored = strdup(stored)) == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	/* an md5 secret cannot answer SCRAM, nor a SCRAM secret md5: as PostgreSQL */
	if (secret == NULL || agent->settings.auth_type == HD_AUTH_SCRAM_SHA_256 ||
		(agent->settings.auth_type == HD_AUTH_MD5 && stored_kind == HD_SECRET_SCRAM))
	{
		auth->scram = secret && stored_kind != HD_SECRET_MD5 ?
			hd_scram_server_new(secret, client->user) :
			hd_scram_server_new_mock(client->user, agent->mock_key);
		if (auth->scram == NULL)
		{
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return;
		}
		client->auth_step = HD_AUTH_STEP_SASL_INITIAL;
		hd_send_auth(&client->out, HD_AUTHREQ_SASL, mechanisms, sizeof(mechanisms));
	}
	else if (agent->settings.auth_type == HD_AUTH_MD5)
	{
		if (!hd_random_bytes(auth->md5_salt, sizeof(auth->md5_salt)))
		{
			hd_client_fatal(client, HD_SQLSTATE_INTERNAL_ERROR, "could not generate a random salt", NULL);
			return;
		}
		client->auth_step = HD_AUTH_STEP_MD5;
		hd_send_auth(&client->out, HD_AUTHREQ_MD5, auth->md5_salt, sizeof(auth->md5_salt));
	}
	else
	{
		client->auth_step = HD_AUTH_STEP_PASSWORD;
		hd_send_auth(&client->out, HD_AUTHREQ_CLEARTEXT, NULL, 0);
	}
	hd_client_flush(client);
}

/* The looked-up secret of the client's role arrived (lookup.c). */
static void
role_secret_found(void *arg, const char *secret, const char *error)
{
	HdClient   *client = arg;
	HdScramSecret parsed;
	HdSecretKind kind;
	bool		usable;

	client->auth_step = HD_AUTH_STEP_NONE;
	if (error)
	{
		/* the reason is in the log; the client hears what PostgreSQL would say */
		HdAuthError err = {0};

		hd_auth_failed(&err, client->user, error);
		auth_fail(client, &err);
		return;
	}
	if (secret == NULL)
	{
		hd_client_challenge(client, NULL, HD_SECRET_SCRAM, NULL, NULL);	/* no such role: mock */
		return;
	}
	if (hd_client_auth_state(client) == NULL ||
		(client->auth->role_secret = strdup(secret)) == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	kind = hd_secret_kind(secret);
	usable = kind != HD_SECRET_SCRAM || hd_scram_parse_secret(secret, &parsed);
	if (kind == HD_SECRET_PLAINTEXT)
		usable = hd_secret_from_password(secret, &parsed);
	hd_client_challenge(client, usable ? &parsed : NULL, kind, secret, NULL);
}

void
hd_client_start_auth(HdClient *client)
{
	HdAgent    *agent = client->agent;
	HdPgPool   *pg = client->pool ? hd_pg_pool(client->pool) : NULL;
	const HdConfig *config;

	if (pg != NULL)
	{
		/* the config's own user: checked against its password */
		hd_client_challenge(client, pg->has_secret ? &pg->secret : NULL, HD_SECRET_PLAINTEXT,
							pg->password, NULL);
		return;
	}
	config = client->auth ? hd_configs_find(&agent->configs, client->auth->config_id) : NULL;
	client->state = HD_CLIENT_AUTH;
	client->auth_step = HD_AUTH_STEP_LOOKUP;
	if (config == NULL ||
		hd_lookup_role_secret(agent, config, client->user, role_secret_found, client) < 0)
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
}

/*
 * A role other than the config's user authenticated: its pool logs in to the
 * origin with what this login proved (SCRAM keys, or the md5 secret, or the
 * stored plaintext password).
 */
static bool
attach_role_pool(HdClient *client)
{
	HdAgent    *agent = client->agent;
	HdClientAuth *auth = client->auth;
	const HdConfig *config = hd_configs_find(&agent->configs, auth->config_id);
	HdPool	   *found;
	HdPgPool   *pg;
	HdSecretKind kind = hd_secret_kind(auth->role_secret);

	if (config == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_INVALID_CATALOG_NAME, "the config of this database was deleted", NULL);
		return false;
	}
	found = hd_pg_pool_get_for_role(agent, config, client->user);
	if (found == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return false;
	}
	pg = hd_pg_pool(found);
	if (kind == HD_SECRET_SCRAM)
		pg->use_keys = auth->scram &&
			hd_scram_server_passthrough_keys(auth->scram, pg->client_key, pg->server_key);
	else
	{
		char	  **slot = kind == HD_SECRET_MD5 ? &pg->md5_secret : &pg->password;
		char	   *copy = strdup(auth->role_secret);

		if (copy == NULL)
		{
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return false;
		}
		if (*slot)
			hd_free_secret(*slot);
		*slot = copy;
	}
	client->pool = found;
	return true;
}

/* The client-first-message, from SASLInitialResponse or a SASLResponse after it. */
static void
sasl_first(HdClient *client, const char *data, size_t len)
{
	HdAuthError err = {0};
	const char *out;

	if (hd_scram_server_handle_client_first(client->auth->scram, data, len, &out, &err) != HD_AUTH_OK)
	{
		auth_fail(client, &err);
		return;
	}
	client->auth_step = HD_AUTH_STEP_SASL_FINAL;
	hd_send_auth(&client->out, HD_AUTHREQ_SASL_CONTINUE, out, strlen(out));
	hd_client_flush(client);
}

/* SASLInitialResponse: mechanism, Int32 length (-1: none), data. */
static void
sasl_initial(HdClient *client, const char *body, uint32_t len)
{
	HdAuthError err = {0};
	const char *mech_end = memchr(body, '\0', len);
	const char *data;
	int32_t		data_len;

	if (mech_end == NULL || (size_t) (mech_end + 1 - body) + 4 > len)
	{
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "malformed SASLInitialResponse message", NULL);
		return;
	}
	if (hd_scram_check_mechanism(body, &err) != HD_AUTH_OK)
	{
		auth_fail(client, &err);
		return;
	}
	data = mech_end + 1 + 4;
	data_len = (int32_t) hd_get_u32(mech_end + 1);
	if (data_len == -1 && (size_t) (data - body) == len)
	{
		/* no initial response: ask for it with an empty challenge, as PostgreSQL */
		client->auth_step = HD_AUTH_STEP_SASL_FIRST;
		hd_send_auth(&client->out, HD_AUTHREQ_SASL_CONTINUE, NULL, 0);
		hd_client_flush(client);
		return;
	}
	if (data_len < 0 || (size_t) data_len != len - (size_t) (data - body))
	{
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "malformed SASLInitialResponse message", NULL);
		return;
	}
	sasl_first(client, data, (size_t) data_len);
}

static void
sasl_final(HdClient *client, const char *body, uint32_t len)
{
	HdAuthError err = {0};
	const char *out;

	if (hd_scram_server_handle_client_final(client->auth->scram, body, len, &out, &err) != HD_AUTH_OK)
	{
		auth_fail(client, &err);
		return;
	}
	hd_send_auth(&client->out, HD_AUTHREQ_SASL_FINAL, out, strlen(out));
	auth_done(client);
}

static void
password_message(HdClient *client, const char *body, uint32_t len)
{
	HdAuthError err = {0};
	HdAuthStatus status;
	const char *stored = client->auth->stored;

	if (stored == NULL)
		status = hd_auth_failed(&err, client->user, "no password is known for this user");
	else if (client->auth_step == HD_AUTH_STEP_MD5)
		status = hd_md5_server_check(stored, client->user, client->auth->md5_salt, body, len,
									 &err);
	else
		status = hd_password_check(stored, client->user, body, len, &err);
	if (status != HD_AUTH_OK)
	{
		auth_fail(client, &err);
		return;
	}
	auth_done(client);
}

/* One PasswordMessage-type ('p') message, whatever the step. */
void
hd_client_continue_auth(HdClient *client)
{
	const char *head;
	char		type;
	uint32_t	len;

	if (hd_iobuf_live(&client->in) < 5)
		return;
	head = hd_iobuf_head(&client->in);
	type = head[0];
	len = hd_get_u32(head + 1);
	if (type != 'p')
	{
		char		message[96];

		snprintf(message, sizeof(message),
				 "expected password response, got message type %d", (unsigned char) type);
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, message, NULL);
		return;
	}
	if (len < 4 || len > HD_SCRAM_MAX_MESSAGE_LEN)
	{
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet size", NULL);
		return;
	}
	if (hd_iobuf_live(&client->in) < (size_t) len + 1)
		return;
	/*
	 * Consume first: a successful step may log the client in and process
	 * what it sent next, which must not see this message again. The body
	 * stays valid: nothing is read into the buffer meanwhile.
	 */
	hd_iobuf_consume(&client->in, (size_t) len + 1);
	switch (client->auth_step)
	{
		case HD_AUTH_STEP_SASL_INITIAL:
			sasl_initial(client, head + 5, len - 4);
			break;
		case HD_AUTH_STEP_SASL_FIRST:
			sasl_first(client, head + 5, len - 4);
			break;
		case HD_AUTH_STEP_SASL_FINAL:
			sasl_final(client, head + 5, len - 4);
			break;
		case HD_AUTH_STEP_MD5:
		case HD_AUTH_STEP_PASSWORD:
			password_message(client, head + 5, len - 4);
			break;
		default:
			hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "unexpected password message", NULL);
			break;
	}
}

/*
 * A client not logged in within client_login_timeout. Before its startup
 * packet (SSL negotiation included) it is closed without a word, as
 * PostgreSQL does; after it, with PostgreSQL's FATAL for an authentication
 * timeout. A FATAL queued before that the client has not read is given up
 * on: nothing else would ever close it.
 */
void
hd_client_login_timeout(HdClient *client)
{
	if (client->state == HD_CLIENT_STARTUP || client->close_after_flush)
	{
		hd_debug("client %s: closed: not logged in within client_login_timeout", client->addr);
		hd_client_close(client);
		return;
	}
	if (client->auth_step == HD_AUTH_STEP_LOOKUP)
	{
		/* the role's secret must not arrive after the FATAL */
		hd_lookup_cancel(client->agent, client);
		client->auth_step = HD_AUTH_STEP_NONE;
	}
	hd_client_fatal(client, HD_SQLSTATE_QUERY_CANCELED, "canceling authentication due to timeout", NULL);
}
