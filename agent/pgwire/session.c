/*
 * session.c
 *    See session.h.
 */
#include "pgwire/session.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "base/sql_quote.h"
#include "base/text_buf.h"

/*
 * Settings whose SET the agent carries between origin connections: those
 * the server reports in ParameterStatus, and the common per-session knobs.
 */
static const char *const tracked_settings[] = {
	"application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
	"standard_conforming_strings", "default_transaction_read_only",
	"default_transaction_isolation", "default_transaction_deferrable",
	"search_path", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
	"extra_float_digits", "bytea_output", "work_mem", "maintenance_work_mem",
	"client_min_messages", "jit", "enable_seqscan", "random_page_cost", "row_security",
};

bool
hd_setting_is_tracked(const char *name)
{
	for (size_t i = 0; i < sizeof(tracked_settings) / sizeof(tracked_settings[0]); i++)
		if (strcasecmp(name, tracked_settings[i]) == 0)
			return true;
	return false;
}

/* ---------------------------------------------------------------------------
 * Setting lists
 */

const HdSetting *
hd_settings_find(const HdSettingList *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcasecmp(list->items[i].name, name) == 0)
			return &list->items[i];
	return NULL;
}

/* name, value and sql share one allocation, which name points to. */
static void
setting_free(HdSetting *s)
{
	free(s->name);
}

int
hd_settings_put(HdSettingList *list, const char *name, const char *value, const char *sql)
{
	HdSetting	fresh;
	HdSetting  *items;
	size_t		i;
	size_t		name_len = strlen(name) + 1;
	size_t		value_len = value ? strlen(value) + 1 : 0;
	size_t		sql_len = strlen(sql) + 1;

	/* one block per setting: every client carries its startup parameters */
	fresh.name = malloc(name_len + value_len + sql_len);
	if (fresh.name == NULL)
		return -1;
	memcpy(fresh.name, name, name_len);
	fresh.value = value ? memcpy(fresh.name + name_len, value, value_len) : NULL;
	fresh.sql = memcpy(fresh.name + name_len + value_len, sql, sql_len);
	for (char *p = fresh.name; *p; p++)
		*p = (char) tolower((unsigned char) *p);
	for (i = 0; i < list->count; i++)
	{
		if (strcmp(list->items[i].name, fresh.name) == 0)
		{
			setting_free(&list->items[i]);
			list->items[i] = fresh;
			return 0;
		}
	}
	items = realloc(list->items, (list->count + 1) * sizeof(HdSetting));
	if (items == NULL)
	{
		setting_free(&fresh);
		return -1;
	}
	list->items = items;
	list->items[list->count++] = fresh;
	return 0;
}

void
hd_settings_remove(HdSettingList *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
	{
		if (strcasecmp(list->items[i].name, name) == 0)
		{
			setting_free(&list->items[i]);
			list->items[i] = list->items[--list->count];
			return;
		}
	}
}

void
hd_settings_clear(HdSettingList *list)
{
	for (size_t i = 0; i < list->count; i++)
		setting_free(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

int
hd_settings_copy(HdSettingList *dst, const HdSettingList *src)
{
	hd_settings_clear(dst);
	for (size_t i = 0; i < src->count; i++)
		if (hd_settings_put(dst, src->items[i].name, src->items[i].value, src->items[i].sql) < 0)
			return -1;
	return 0;
}

/* Back to what `startup` says for name, or to the origin's default. */
static int
reset_setting(HdSettingList *list, const char *name, const HdSettingList *startup)
{
	const HdSetting *initial = startup ? hd_settings_find(startup, name) : NULL;

	if (initial == NULL)
	{
		hd_settings_remove(list, name);
		return 0;
	}
	return hd_settings_put(list, initial->name, initial->value, initial->sql);
}

int
hd_settings_apply(HdSettingList *list, const HdClassification *c, const HdSettingList *startup)
{
	if (c->reset_all && (startup ? hd_settings_copy(list, startup) < 0 :
						 (hd_settings_clear(list), 0) < 0))
		return -1;
	for (size_t i = 0; i < c->changes.count; i++)
	{
		const HdSetting *s = &c->changes.items[i];

		if (s->sql == NULL || s->sql[0] == '\0')
		{
			if (reset_setting(list, s->name, startup) < 0)
				return -1;
		}
		else if (hd_settings_put(list, s->name, s->value, s->sql) < 0)
			return -1;
	}
	return 0;
}

static bool
same_setting(const HdSetting *a, const HdSetting *b)
{
	if (a->value && b->value)
		return strcasecmp(a->value, b->value) == 0;
	return strcmp(a->sql, b->sql) == 0;
}

/*
 * A setting's name as SET and RESET take it: each dot-separated part quoted
 * as an identifier if needed (a custom "myapp.user" is "myapp"."user": user
 * is a reserved word).
 */
static void
quote_setting_name(HdTextBuf *buf, const char *name)
{
	const char *part = name;

	for (;;)
	{
		const char *dot = strchr(part, '.');
		char	   *copy = strndup(part, dot ? (size_t) (dot - part) : strlen(part));

		if (copy == NULL)
		{
			buf->failed = true;
			return;
		}
		hd_quote_identifier(buf, copy);
		free(copy);
		if (dot == NULL)
			return;
		hd_text_buf_putc(buf, '.');
		part = dot + 1;
	}
}

char *
hd_settings_diff_sql(const HdSettingList *have, const HdSettingList *want, bool *err)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;
	char	   *sql;

	*err = false;
	for (size_t i = 0; i < have->count; i++)
		if (hd_settings_find(want, have->items[i].name) == NULL)
		{
			hd_text_buf_puts(&buf, "RESET ");
			quote_setting_name(&buf, have->items[i].name);
			hd_text_buf_putc(&buf, ';');
		}
	for (size_t i = 0; i < want->count; i++)
	{
		const HdSetting *current = hd_settings_find(have, want->items[i].name);

		if (current == NULL || !same_setting(current, &want->items[i]))
			hd_text_buf_printf(&buf, "%s;", want->items[i].sql);
	}
	if (buf.len == 0 && !buf.failed)
		return NULL;
	sql = hd_text_buf_finish(&buf);
	if (sql == NULL)
		*err = true;
	return sql;
}

/* ---------------------------------------------------------------------------
 * Startup parameters
 */

static bool
plain_setting_name(const char *name)
{
	if (!isalpha((unsigned char) name[0]) && name[0] != '_')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '.')
			return false;
	return true;
}

static const char *
put_startup_setting(HdSettingList *list, const char *name, const char *value)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;
	const HdSetting *earlier;
	char	   *sql;
	char		lower[256];
	int			rc;

	if (!plain_setting_name(name) || strlen(name) >= sizeof(lower))
		return "invalid setting name in startup packet";
	for (size_t i = 0; i <= strlen(name); i++)
		lower[i] = (char) tolower((unsigned char) name[i]);
	/*
	 * Set by `options` before: PostgreSQL applies both, in order, and some
	 * settings keep a part of the first (DateStyle's field order): carry
	 * both statements, compared as such (no single value).
	 */
	earlier = hd_settings_find(list, lower);
	if (earlier)
	{
		hd_text_buf_puts(&buf, earlier->sql);
		hd_text_buf_puts(&buf, "; ");
	}
	/*
	 * set_config(), not SET: the value is taken as PostgreSQL takes a startup
	 * parameter's, a string the setting parses ("a,b" is two schemas for
	 * search_path, where SET search_path TO 'a,b' would be one), and the name
	 * needs no quoting.
	 */
	hd_text_buf_puts(&buf, "SELECT pg_catalog.set_config(");
	hd_quote_literal(&buf, lower);
	hd_text_buf_puts(&buf, ", ");
	hd_quote_literal(&buf, value);
	hd_text_buf_puts(&buf, ", false)");
	sql = hd_text_buf_finish(&buf);
	if (sql == NULL)
		return "out of memory";
	rc = hd_settings_put(list, lower, earlier ? NULL : value, sql);
	free(sql);
	return rc < 0 ? "out of memory" : NULL;
}

/* Split `options` as PostgreSQL's pg_split_opts(): whitespace, backslash escapes. */
static const char *
apply_options(HdSettingList *list, const char *options)
{
	const char *p = options;
	bool		expect_c_value = false;

	while (*p)
	{
		char		word[1024];
		size_t		n = 0;
		char	   *eq;
		const char *problem;

		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
			break;
		while (*p && !isspace((unsigned char) *p))
		{
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 >= sizeof(word))
				return "startup option too long";
			word[n++] = *p++;
		}
		word[n] = '\0';
		if (!expect_c_value && strcmp(word, "-c") == 0)
		{
			expect_c_value = true;
			continue;
		}
		if (!expect_c_value && strncmp(word, "-c", 2) == 0)
			memmove(word, word + 2, strlen(word + 2) + 1);
		else if (!expect_c_value && strncmp(word, "--", 2) == 0)
			memmove(word, word + 2, strlen(word + 2) + 1);
		else if (!expect_c_value)
			return "unsupported command-line option in startup packet \"options\" (use -c name=value)";
		expect_c_value = false;
		eq = strchr(word, '=');
		if (eq == NULL)
			return "invalid startup option: expected name=value";
		*eq = '\0';
		for (char *q = word; *q; q++)
			if (*q == '-')
				*q = '_';
		problem = put_startup_setting(list, word, eq + 1);
		if (problem)
			return problem;
	}
	return expect_c_value ? "startup option -c needs a value" : NULL;
}

const char *
hd_settings_from_startup(HdSettingList *list, const char *name, const char *value)
{
	if (strcmp(name, "options") == 0)
		return apply_options(list, value);
	return put_startup_setting(list, name, value);
}

/* ---------------------------------------------------------------------------
 * Classification
 */

static bool
contains_ci(const char *text, size_t len, const char *word)
{
	size_t		wlen = strlen(word);
	unsigned char first = (unsigned char) word[0];	/* words are lower-case ASCII */

	/*
	 * This runs for every statement, so only positions whose first letter
	 * matches pay for a comparison (a profile showed the naive loop as the
	 * agent's hottest code).
	 */
	for (size_t i = 0; i + wlen <= len; i++)
		if (((unsigned char) text[i] | 0x20) == first &&
			strncasecmp(text + i, word, wlen) == 0)
			return true;
	return false;
}

/* The first word of each statement (naively split at ';'), lower-cased. */
static bool
starts_session_statement(const char *text, size_t len)
{
	static const char *const words[] = {
		"set", "reset", "listen", "create", "prepare", "execute", "deallocate",
		"declare", "discard", "load", NULL
	};
	size_t		i = 0;

	while (i < len)
	{
		size_t		start;

		/* skip whitespace and -- comments */
		while (i < len && (isspace((unsigned char) text[i]) || text[i] == '('))
			i++;
		if (i + 1 < len && text[i] == '-' && text[i + 1] == '-')
		{
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		if (i + 1 < len && text[i] == '/' && text[i + 1] == '*')
			return true;		/* comments before a statement: let the parser decide */
		start = i;
		while (i < len && isalpha((unsigned char) text[i]))
			i++;
		for (int w = 0; words[w]; w++)
			if (i - start == strlen(words[w]) && strncasecmp(text + start, words[w], i - start) == 0)
				return true;
		while (i < len && text[i] != ';')
			i++;
		i++;
	}
	return false;
}

static const char *
last_name(PgQuery__Node **names, size_t n)
{
	if (n == 0 || names[n - 1]->node_case != PG_QUERY__NODE__NODE_STRING)
		return "";
	return names[n - 1]->string->sval;
}

/* A function call that changes session state: session advisory locks, set_config(..., false). */
static const char *
session_function(const PgQuery__FuncCall *call)
{
	const char *name = last_name(call->funcname, call->n_funcname);

	if (strcmp(name, "pg_advisory_lock") == 0 || strcmp(name, "pg_advisory_lock_shared") == 0 ||
		strcmp(name, "pg_try_advisory_lock") == 0 ||
		strcmp(name, "pg_try_advisory_lock_shared") == 0)
		return "session advisory lock";
	if (strcmp(name, "set_config") == 0)
	{
		/* set_config(name, value, is_local): only a constant true is harmless */
		const PgQuery__Node *local = call->n_args == 3 ? call->args[2] : NULL;

		if (local && local->node_case == PG_QUERY__NODE__NODE_A_CONST &&
			local->a_const->val_case == PG_QUERY__A__CONST__VAL_BOOLVAL &&
			local->a_const->boolval->boolval)
			return NULL;
		return "set_config() of a session setting";
	}
	return NULL;
}

/* Walk every message below m (generic, through protobuf-c's descriptors). */
static const char *
find_session_function(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *desc;

	if (m == NULL || depth > 200)
		return depth > 200 ? "statement too deeply nested to check" : NULL;
	desc = m->descriptor;
	if (desc == &pg_query__func_call__descriptor)
	{
		const char *reason = session_function((const PgQuery__FuncCall *) m);

		if (reason)
			return reason;
	}
	for (unsigned i = 0; i < desc->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const char *base = (const char *) m;
		const char *reason = NULL;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		{
			if (*(const uint32_t *) (base + f->quantifier_offset) != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t		n = *(const size_t *) (base + f->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *) (base + f->offset);

			for (size_t k = 0; k < n && reason == NULL; k++)
				reason = find_session_function(items[k], depth + 1);
		}
		else
			reason = find_session_function(*(ProtobufCMessage *const *) (base + f->offset),
										   depth + 1);
		if (reason)
			return reason;
	}
	return NULL;
}

static bool
temp_relation(const PgQuery__RangeVar *rv)
{
	return rv && rv->relpersistence && rv->relpersistence[0] == 't';
}

static void
pin(HdClassification *out, const char *reason)
{
	if (out->effect != HD_EFFECT_PIN)
	{
		out->effect = HD_EFFECT_PIN;
		out->pin_reason = reason;
	}
}

static void
classify_set(const char *sql, const PgQuery__RawStmt *raw, const PgQuery__VariableSetStmt *set,
			 bool in_extended, HdClassification *out)
{
	char	   *text;
	size_t		len;

	if (set->is_local)
		return;					/* SET LOCAL ends with its transaction */
	switch (set->kind)
	{
		case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
			/* SET TRANSACTION ... is transaction-scoped; SESSION CHARACTERISTICS is not */
			if (strcasecmp(set->name, "TRANSACTION") != 0)
				pin(out, "SET SESSION CHARACTERISTICS");
			return;
		case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
			out->reset_all = true;
			if (out->effect == HD_EFFECT_NONE)
				out->effect = HD_EFFECT_TRACKED;
			return;
		default:
			break;
	}
	if (!hd_setting_is_tracked(set->name))
	{
		pin(out, "SET of a setting the agent does not carry between connections");
		return;
	}
	if (in_extended)
	{
		pin(out, "SET in a prepared statement");
		return;
	}
	if (out->effect == HD_EFFECT_NONE)
		out->effect = HD_EFFECT_TRACKED;
	if (set->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET ||
		set->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT)
	{
		/* a reset: forget it (the next connection starts from its default) */
		if (hd_settings_put(&out->changes, set->name, NULL, "") < 0)
			pin(out, "out of memory");
		return;
	}
	/* re-apply the statement itself */
	len = raw->stmt_len > 0 ? (size_t) raw->stmt_len : strlen(sql + raw->stmt_location);
	text = strndup(sql + raw->stmt_location, len);
	if (text == NULL || hd_settings_put(&out->changes, set->name, NULL, text) < 0)
		pin(out, "out of memory");
	free(text);
}

static void
classify_statement(const char *sql, const PgQuery__RawStmt *raw, bool in_extended,
				   HdClassification *out)
{
	const PgQuery__Node *node = raw->stmt;
	const char *reason;

	if (node == NULL)
		return;
	switch (node->node_case)
	{
		case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
			classify_set(sql, raw, node->variable_set_stmt, in_extended, out);
			return;
		case PG_QUERY__NODE__NODE_LISTEN_STMT:
			pin(out, "LISTEN");
			return;
		case PG_QUERY__NODE__NODE_PREPARE_STMT:
		case PG_QUERY__NODE__NODE_EXECUTE_STMT:
			pin(out, "SQL-level PREPARE/EXECUTE");
			return;
		case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
			/* alone it acts on the client's names (hd_classify); not among others */
			pin(out, "DEALLOCATE among other statements");
			return;
		case PG_QUERY__NODE__NODE_LOAD_STMT:
			pin(out, "LOAD");
			return;
		case PG_QUERY__NODE__NODE_DISCARD_STMT:
			if (node->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL)
			{
				out->reset_all = true;
				out->discard_all = true;
				if (out->effect == HD_EFFECT_NONE)
					out->effect = HD_EFFECT_TRACKED;
			}
			return;
		case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
			if (node->declare_cursor_stmt->options & 0x0020)	/* CURSOR_OPT_HOLD */
			{
				pin(out, "WITH HOLD cursor");
				return;
			}
			break;
		case PG_QUERY__NODE__NODE_CREATE_STMT:
			if (temp_relation(node->create_stmt->relation))
			{
				pin(out, "temporary table");
				return;
			}
			break;
		case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
			if (node->create_table_as_stmt->into &&
				temp_relation(node->create_table_as_stmt->into->rel))
			{
				pin(out, "temporary table");
				return;
			}
			break;
		case PG_QUERY__NODE__NODE_VIEW_STMT:
			if (temp_relation(node->view_stmt->view))
			{
				pin(out, "temporary view");
				return;
			}
			break;
		case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
			if (temp_relation(node->create_seq_stmt->sequence))
			{
				pin(out, "temporary sequence");
				return;
			}
			break;
		default:
			break;
	}
	reason = find_session_function((const ProtobufCMessage *) node, 0);
	if (reason)
		pin(out, reason);
}

bool
hd_query_leaves_no_transaction(const char *text, size_t len)
{
	static const char *const words[] = {
		"select", "insert", "update", "delete", "with", "values", "table", NULL
	};
	size_t		i = 0;
	size_t		start;
	bool		known = false;
	const char *semicolon;

	while (len > 0 && text[len - 1] == '\0')
		len--;					/* a Query's text ends with its NUL */
	while (i < len && isspace((unsigned char) text[i]))
		i++;
	start = i;
	while (i < len && isalpha((unsigned char) text[i]))
		i++;
	for (int w = 0; words[w] && !known; w++)
		known = i - start == strlen(words[w]) &&
			strncasecmp(text + start, words[w], i - start) == 0;
	/* the word alone, or followed by a blank, "(" or "*": not "selectx", not "select--" */
	if (!known || (i < len && !isspace((unsigned char) text[i]) && text[i] != '(' &&
				   text[i] != '*'))
		return false;
	semicolon = memchr(text + i, ';', len - i);
	if (semicolon == NULL)
		return true;
	for (const char *p = semicolon + 1; p < text + len; p++)
		if (!isspace((unsigned char) *p))
			return false;		/* more after it: a second statement, or a literal */
	return true;
}

void
hd_classify(const char *text, size_t len, bool in_extended, HdClassification *out)
{
	PgQueryProtobufParseResult result;
	PgQuery__ParseResult *tree;
	char	   *sql;

	memset(out, 0, sizeof(*out));
	/* fast path: no statement that could touch session state */
	if (!contains_ci(text, len, "advisory") && !contains_ci(text, len, "set_config") &&
		!starts_session_statement(text, len))
		return;

	sql = strndup(text, len);
	if (sql == NULL)
	{
		pin(out, "out of memory");
		return;
	}
	result = pg_query_parse_protobuf(sql);
	if (result.error)
	{
		/* the origin will refuse it too: no session effect */
		pg_query_free_protobuf_parse_result(result);
		free(sql);
		return;
	}
	tree = pg_query__parse_result__unpack(NULL, result.parse_tree.len,
										  (const uint8_t *) result.parse_tree.data);
	if (tree == NULL)
		pin(out, "could not read the parse tree");
	else if (tree->n_stmts == 1 && tree->stmts[0]->stmt &&
			 tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_DEALLOCATE_STMT)
	{
		/* DEALLOCATE ALL has no name (protobuf: the empty string) */
		const char *name = tree->stmts[0]->stmt->deallocate_stmt->name;

		out->deallocate = true;
		if (name && name[0] && (out->deallocate_name = strdup(name)) == NULL)
			pin(out, "out of memory");
		pg_query__parse_result__free_unpacked(tree, NULL);
	}
	else
	{
		for (size_t i = 0; i < tree->n_stmts && out->effect != HD_EFFECT_PIN; i++)
			classify_statement(sql, tree->stmts[i], in_extended, out);
		pg_query__parse_result__free_unpacked(tree, NULL);
	}
	pg_query_free_protobuf_parse_result(result);
	free(sql);
}

int
hd_classification_merge(HdClassification *dst, const HdClassification *src)
{
	dst->effect = HD_EFFECT_TRACKED;
	if (src->reset_all)
	{
		hd_settings_clear(&dst->changes);
		dst->reset_all = true;
	}
	dst->discard_all = dst->discard_all || src->discard_all;
	for (size_t i = 0; i < src->changes.count; i++)
	{
		const HdSetting *s = &src->changes.items[i];

		if (hd_settings_put(&dst->changes, s->name, s->value, s->sql) < 0)
			return -1;
	}
	return 0;
}

void
hd_classification_free(HdClassification *c)
{
	hd_settings_clear(&c->changes);
	free(c->deallocate_name);
	c->deallocate_name = NULL;
}

/* ---------------------------------------------------------------------------
 * Pin reasons and the result cache (session.h)
 */

static const struct
{
	const char *reason;
	HdPinClass	class;
}			pin_classes[] = {
	{"LISTEN", {true, "other"}},
	{"session advisory lock", {true, "other"}},
	{"SQL-level PREPARE/EXECUTE", {true, "other"}},
	{"WITH HOLD cursor", {true, "other"}},
	{"DEALLOCATE in a prepared statement", {true, "other"}},
	{"DEALLOCATE among other statements", {true, "other"}},
	{"temporary table", {false, "temporary object"}},
	{"temporary view", {false, "temporary object"}},
	{"temporary sequence", {false, "temporary object"}},
	{"SET of a setting the agent does not carry between connections", {false, "setting"}},
	{"SET inside a transaction block", {false, "setting"}},
	{"SET in a prepared statement", {false, "setting"}},
	{"SET SESSION CHARACTERISTICS", {false, "setting"}},
	{"set_config() of a session setting", {false, "setting"}},
	{"session-level statement in a prepared statement", {false, "setting"}},
	{"LOAD", {false, "other"}},
	/* the agent's own statements on the origin may be gone: its state check with them */
	{"DEALLOCATE of a name the agent uses on the origin", {false, "other"}},
	{"replication connection", {false, "other"}},
};

HdPinClass
hd_pin_class(const char *reason)
{
	static const HdPinClass state = {false, "session state"};
	static const HdPinClass unknown = {false, "other"};

	if (reason == NULL)
		return unknown;
	for (size_t i = 0; i < sizeof(pin_classes) / sizeof(pin_classes[0]); i++)
		if (strcmp(reason, pin_classes[i].reason) == 0)
			return pin_classes[i].class;
	/* state_check.c's: "session state changed on the origin (names)" */
	if (strncmp(reason, "session state changed", strlen("session state changed")) == 0)
		return state;
	return unknown;
}

bool
hd_state_entry_cache_neutral(const char *name)
{
	return strcmp(name, "@listen") == 0 || strcmp(name, "@advisory") == 0;
}

/* ---------------------------------------------------------------------------
 * Session state reports
 */

#define STATE_FUNCTION_QUERY \
	"SELECT hyperdrive.session_state() || '@listen=1:' || " \
	"(EXISTS (SELECT FROM pg_catalog.pg_listening_channels()))::pg_catalog.int4 || ';'"

/*
 * Without the extension: the role, the temporary schema, LISTEN and the
 * settings the agent carries, whatever their source (a setting outside that
 * list changed by a function is not seen: docs/agent.md).
 */
static char *
build_fallback_query(void)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;

	hd_text_buf_puts(&buf,
					 "SELECT pg_catalog.string_agg(n || '=' || pg_catalog.octet_length(v) || ':' || v "
					 "|| ';', '') FROM (VALUES "
					 "('@user', current_user::pg_catalog.text || '/' || session_user::pg_catalog.text), "
					 "('@temp', pg_catalog.pg_my_temp_schema()::pg_catalog.text), "
					 "('@listen', (EXISTS (SELECT FROM pg_catalog.pg_listening_channels()))"
					 "::pg_catalog.int4::pg_catalog.text)");
	for (size_t i = 0; i < sizeof(tracked_settings) / sizeof(tracked_settings[0]); i++)
		hd_text_buf_printf(&buf, ", ('%s', pg_catalog.current_setting('%s'))", tracked_settings[i],
						   tracked_settings[i]);
	hd_text_buf_puts(&buf, ") AS s(n, v)");
	return hd_text_buf_finish(&buf);
}

char *
hd_state_query(bool with_function)
{
	return with_function ? strdup(STATE_FUNCTION_QUERY) : build_fallback_query();
}

/* One entry at *p: name (up to '='), value; *p moves past it. -1: malformed. */
static int
next_entry(const char **p, const char **name, size_t *name_len, const char **value,
		   size_t *value_len)
{
	const char *eq = strchr(*p, '=');
	char	   *colon;
	unsigned long len;

	if (eq == NULL || eq == *p)
		return -1;
	len = strtoul(eq + 1, &colon, 10);
	if (colon == eq + 1 || *colon != ':' || strlen(colon + 1) < len + 1 || colon[1 + len] != ';')
		return -1;
	*name = *p;
	*name_len = (size_t) (eq - *p);
	*value = colon + 1;
	*value_len = len;
	*p = colon + 1 + len + 1;
	return 0;
}

/* The value of entry name in report, or NULL; -1 in *bad for a malformed report. */
static const char *
find_entry(const char *report, const char *name, size_t name_len, size_t *value_len, bool *bad)
{
	const char *p = report;

	while (*p)
	{
		const char *n;
		const char *v;
		size_t		nl;

		if (next_entry(&p, &n, &nl, &v, value_len) < 0)
		{
			*bad = true;
			return NULL;
		}
		if (nl == name_len && memcmp(n, name, nl) == 0)
			return v;
	}
	return NULL;
}

/* Entries of a that b lacks or has with another value, added to names. */
static int
add_differences(const char *a, const char *b, HdSettingList *names)
{
	const char *p = a;
	bool		bad = false;

	while (*p)
	{
		const char *n;
		const char *v;
		size_t		nl;
		size_t		vl;
		size_t		ovl;
		const char *other;

		if (next_entry(&p, &n, &nl, &v, &vl) < 0)
			return -1;
		other = find_entry(b, n, nl, &ovl, &bad);
		if (bad)
			return -1;
		if (other == NULL || ovl != vl || memcmp(other, v, vl) != 0)
		{
			char	   *name = strndup(n, nl);

			if (name == NULL || hd_settings_put(names, name, NULL, "") < 0)
			{
				free(name);
				return -1;
			}
			free(name);
		}
	}
	return 0;
}

int
hd_state_changed_names(const char *before, const char *after, HdSettingList *names)
{
	if (add_differences(before, after, names) < 0 || add_differences(after, before, names) < 0)
		return -1;
	return 0;
}
