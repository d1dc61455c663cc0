/*
 * my_sql.c
 *    What a MySQL statement's text does to the session (my_sql.h).
 */
#include "mywire/my_sql.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum TokKind
{
	T_END,
	T_WORD,						/* a keyword or a name, bare or `quoted` */
	T_NUMBER,
	T_STRING,					/* '...' or "..." */
	T_USERVAR,					/* @name, @'name', @`name` */
	T_SYSVAR,					/* @@name, @@session.name, ... */
	T_SEMI,
	T_PUNCT						/* any other character */
} TokKind;

typedef struct Tok
{
	TokKind		kind;
	const char *start;
	size_t		len;
	char		word[HD_MY_SQL_NAME_MAX];	/* T_WORD, T_SYSVAR: lower case, unquoted */
} Tok;

typedef struct Lexer
{
	const char *p;
	const char *end;
	bool		ended;			/* a ';' was read: the statement is over */
} Lexer;

static bool
is_ident(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '$' || (unsigned char) c >= 0x80;
}

/* Skip whitespace and comments; the body of an executable comment is code. */
static void
skip_space(Lexer *lx)
{
	while (lx->p < lx->end)
	{
		const char *p = lx->p;

		if (isspace((unsigned char) *p))
			lx->p++;
		else if (*p == '#' || (*p == '-' && lx->end - p >= 3 && p[1] == '-' &&
							   (isspace((unsigned char) p[2]) || p[2] == '\0')) ||
				 (*p == '-' && lx->end - p == 2 && p[1] == '-'))
		{
			const char *nl = memchr(p, '\n', (size_t) (lx->end - p));

			lx->p = nl ? nl + 1 : lx->end;
		}
		else if (*p == '/' && lx->end - p >= 2 && p[1] == '*')
		{
			if (lx->end - p >= 4 && (p[2] == '!' || (p[2] == 'M' && p[3] == '!')))
			{
				/* executable comments (slash-star-bang, with a version, or MariaDB's M!): code */
				lx->p += 3;
				if (p[2] == 'M' && lx->p < lx->end && *lx->p == '!')
					lx->p++;
				while (lx->p < lx->end && isdigit((unsigned char) *lx->p))
					lx->p++;
				continue;
			}
			lx->p += 2;
			while (lx->p < lx->end && !(lx->end - lx->p >= 2 && lx->p[0] == '*' && lx->p[1] == '/'))
				lx->p++;
			lx->p = lx->p < lx->end ? lx->p + 2 : lx->end;
		}
		else if (*p == '*' && lx->end - p >= 2 && p[1] == '/')
			lx->p += 2;			/* the end of an executable comment */
		else
			break;
	}
}

/* A quoted run starting at lx->p (quote q, doubled quotes and backslashes escape). */
static void
skip_quoted(Lexer *lx, char q)
{
	lx->p++;
	while (lx->p < lx->end)
	{
		char		c = *lx->p++;

		if (c == '\\' && q != '`' && lx->p < lx->end)
			lx->p++;
		else if (c == q)
		{
			if (lx->p < lx->end && *lx->p == q)
				lx->p++;
			else
				return;
		}
	}
}

static void
lower_copy(char *dst, size_t cap, const char *src, size_t n)
{
	size_t		i;

	for (i = 0; i < n && i + 1 < cap; i++)
		dst[i] = (char) tolower((unsigned char) src[i]);
	dst[i] = '\0';
}

static void
next(Lexer *lx, Tok *t)
{
	const char *p;

	skip_space(lx);
	t->word[0] = '\0';
	t->start = lx->p;
	if (lx->p >= lx->end)
	{
		t->kind = T_END;
		t->len = 0;
		return;
	}
	p = lx->p;
	if (*p == '\'' || *p == '"')
	{
		skip_quoted(lx, *p);
		t->kind = T_STRING;
	}
	else if (*p == '`')
	{
		skip_quoted(lx, '`');
		t->kind = T_WORD;
		if (lx->p - p >= 2)
			lower_copy(t->word, sizeof(t->word), p + 1, (size_t) (lx->p - p - 2));
	}
	else if (*p == '@' && lx->end - p >= 2 && p[1] == '@')
	{
		lx->p += 2;
		while (lx->p < lx->end && (is_ident(*lx->p) || *lx->p == '.'))
			lx->p++;
		t->kind = T_SYSVAR;
		lower_copy(t->word, sizeof(t->word), p + 2, (size_t) (lx->p - p - 2));
	}
	else if (*p == '@')
	{
		lx->p++;
		if (lx->p < lx->end && (*lx->p == '\'' || *lx->p == '"' || *lx->p == '`'))
			skip_quoted(lx, *lx->p);
		else
			while (lx->p < lx->end && (is_ident(*lx->p) || *lx->p == '.'))
				lx->p++;
		t->kind = T_USERVAR;
	}
	else if (isdigit((unsigned char) *p) || (*p == '.' && lx->end - p >= 2 && isdigit((unsigned char) p[1])))
	{
		while (lx->p < lx->end && (isalnum((unsigned char) *lx->p) || *lx->p == '.'))
			lx->p++;
		t->kind = T_NUMBER;
	}
	else if (is_ident(*p))
	{
		while (lx->p < lx->end && is_ident(*lx->p))
			lx->p++;
		t->kind = T_WORD;
		lower_copy(t->word, sizeof(t->word), p, (size_t) (lx->p - p));
	}
	else
	{
		lx->p++;
		t->kind = *p == ';' ? T_SEMI : T_PUNCT;
		if (t->kind == T_SEMI)
			lx->ended = true;
	}
	t->len = (size_t) (lx->p - t->start);
}

static bool
is_word(const Tok *t, const char *w)
{
	return t->kind == T_WORD && strcmp(t->word, w) == 0;
}

static HdMySqlKind
pin(HdMySqlClass *out, const char *why)
{
	out->kind = HD_MY_SQL_PIN;
	out->why = why;
	return HD_MY_SQL_PIN;
}

/* Variables a SET may not carry: the agent manages them, or they belong to the next statement. */
static const char *
uncarried(const char *name)
{
	static const char *const prefixes[] = {"character_set_", "collation_", "session_track_"};
	static const char *const names[] = {
		"sql_log_bin", "insert_id", "last_insert_id", "identity", "timestamp", "rand_seed1",
		"rand_seed2", "pseudo_thread_id", "gtid_next", "gtid_seq_no", "gtid_domain_id",
		"server_id", "names", "character set", "charset", "transaction", "role",
		"wsrep_sync_wait", "skip_replication", "statement",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return "a character set or session-tracking variable";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return "a variable the agent cannot carry to another connection";
	return NULL;
}

/* A literal value: a (signed) number, a quoted string, or a single word. */
static bool
literal_value(Lexer *lx, Tok *t, HdMySqlSet *set)
{
	const char *start;
	size_t		n;

	next(lx, t);
	start = t->start;
	if (t->kind == T_PUNCT && (*t->start == '-' || *t->start == '+'))
		next(lx, t);
	if (t->kind != T_NUMBER && t->kind != T_STRING && !(t->kind == T_WORD && *t->start != '`'))
		return false;
	n = (size_t) (t->start + t->len - start);
	if (n >= sizeof(set->value))
		return false;
	memcpy(set->value, start, n);
	set->value[n] = '\0';
	return true;
}

/*
 * SET [SESSION|LOCAL] a = v [, ...] after the SET: each assignment whose
 * value is a literal is carried; anything else pins.
 */
static HdMySqlKind
classify_set(Lexer *lx, HdMySqlClass *out)
{
	Tok			t;

	next(lx, &t);
	if (is_word(&t, "global") || (t.kind == T_SYSVAR && strncmp(t.word, "global.", 7) == 0))
		return HD_MY_SQL_PLAIN;	/* the server's, not the session's */
	if (is_word(&t, "names") || is_word(&t, "character") || is_word(&t, "charset"))
		return pin(out, "SET NAMES / CHARACTER SET");
	if (is_word(&t, "transaction"))
		return pin(out, "SET TRANSACTION (the next transaction's characteristics)");
	if (is_word(&t, "role"))
		return pin(out, "SET ROLE");
	if (is_word(&t, "password") || is_word(&t, "default"))
		return HD_MY_SQL_PLAIN; /* SET PASSWORD, SET DEFAULT ROLE: nothing of the session */
	if (is_word(&t, "statement"))
		return HD_MY_SQL_PLAIN; /* SET STATEMENT ... FOR: this statement only */
	for (;;)
	{
		HdMySqlSet	set;
		const char *why;

		if (is_word(&t, "session") || is_word(&t, "local"))
		{
			next(lx, &t);
			if (is_word(&t, "transaction"))
				return pin(out, "SET SESSION TRANSACTION");
		}
		if (t.kind == T_USERVAR)
			return pin(out, "a user variable");
		if (t.kind == T_SYSVAR)
		{
			const char *name = t.word;

			if (strncmp(name, "global.", 7) == 0)
				return pin(out, "a SET of global and session variables together");
			if (strncmp(name, "session.", 8) == 0)
				name += 8;
			else if (strncmp(name, "local.", 6) == 0)
				name += 6;
			snprintf(set.name, sizeof(set.name), "%s", name);
		}
		else if (t.kind == T_WORD)
			snprintf(set.name, sizeof(set.name), "%s", t.word);
		else
			return pin(out, "a SET the agent cannot read");
		next(lx, &t);
		if (!(t.kind == T_PUNCT && (*t.start == '=' || (*t.start == ':' && t.start + 1 < lx->end && t.start[1] == '='))))
			return pin(out, "a SET the agent cannot read");
		if (*t.start == ':')
			lx->p++;
		if ((why = uncarried(set.name)) != NULL)
			return pin(out, why);
		if (!literal_value(lx, &t, &set))
			return pin(out, "a SET whose value is an expression");
		if (strcmp(set.name, "autocommit") != 0)
		{
			if (out->nsets == HD_MY_SQL_MAX_SETS)
				return pin(out, "a SET of too many variables");
			out->sets[out->nsets++] = set;
		}
		next(lx, &t);
		if (t.kind == T_END || t.kind == T_SEMI)
			break;
		if (!(t.kind == T_PUNCT && *t.start == ','))
			return pin(out, "a SET the agent cannot read");
		next(lx, &t);
	}
	out->kind = HD_MY_SQL_CARRY;	/* autocommit alone too: the origin reports its change */
	return out->kind;
}

static HdMySqlKind
classify_use(Lexer *lx, HdMySqlClass *out)
{
	Tok			t;
	Tok			after;

	next(lx, &t);
	if (t.kind != T_WORD)
		return HD_MY_SQL_PLAIN; /* the origin's syntax error */
	next(lx, &after);
	if (after.kind != T_END && after.kind != T_SEMI)
		return pin(out, "a USE the agent cannot read");
	if (*t.start == '`')
	{
		size_t		n = t.len - 2;

		if (n >= sizeof(out->database) || memchr(t.start + 1, '`', n))
			return pin(out, "a USE the agent cannot read");
		memcpy(out->database, t.start + 1, n);
		out->database[n] = '\0';
	}
	else
	{
		if (t.len >= sizeof(out->database))
			return pin(out, "a USE the agent cannot read");
		memcpy(out->database, t.start, t.len);
		out->database[t.len] = '\0';
	}
	out->kind = HD_MY_SQL_USE;
	return out->kind;
}

/* Words anywhere in a statement that pin, or read the previous statement's diagnostics. */
static HdMySqlKind
scan_rest(const Tok *first, Lexer *lx, HdMySqlClass *out)
{
	Tok			t;
	Tok			prev = *first;

	for (;;)
	{
		next(lx, &t);
		if (t.kind == T_END || t.kind == T_SEMI)
			return out->kind;
		if (t.kind == T_USERVAR)
			return pin(out, "a user variable");
		if (is_word(&t, "get_lock") || is_word(&t, "release_lock") ||
			is_word(&t, "release_all_locks"))
			return pin(out, "a named lock (GET_LOCK)");
		if (is_word(&t, "sql_calc_found_rows"))
			return pin(out, "SQL_CALC_FOUND_ROWS");
		if (is_word(&t, "temporary") && is_word(first, "create"))
			return pin(out, "a temporary table");
		if (t.kind == T_SYSVAR)
		{
			const char *name = t.word;

			if (strncmp(name, "session.", 8) == 0)
				name += 8;
			if (strcmp(name, "warning_count") == 0 || strcmp(name, "error_count") == 0 ||
				strcmp(name, "identity") == 0 || strcmp(name, "last_insert_id") == 0 ||
				strcmp(name, "insert_id") == 0)
			{
				out->kind = HD_MY_SQL_DIAGNOSTICS;
				out->why = "the previous statement's diagnostics";
			}
		}
		if (is_word(&t, "last_insert_id") || is_word(&t, "found_rows") ||
			is_word(&t, "row_count") || (is_word(&t, "diagnostics") && is_word(&prev, "get")))
		{
			out->kind = HD_MY_SQL_DIAGNOSTICS;
			out->why = "the previous statement's diagnostics";
		}
		prev = t;
	}
}

/* KILL [HARD | SOFT] [QUERY | CONNECTION] id, after the KILL. */
static HdMySqlKind
classify_kill(Lexer *lx, HdMySqlClass *out)
{
	Tok			t;
	char		digits[24];

	next(lx, &t);
	if (is_word(&t, "hard") || is_word(&t, "soft"))
		next(lx, &t);
	if (is_word(&t, "query") || is_word(&t, "connection"))
	{
		out->kill_query = is_word(&t, "query");
		next(lx, &t);
	}
	if (t.kind != T_NUMBER || t.len >= sizeof(digits) || strspn(t.start, "0123456789") < t.len)
		return pin(out, "a KILL the agent cannot read");
	memcpy(digits, t.start, t.len);
	digits[t.len] = '\0';
	out->kill_id = strtoull(digits, NULL, 10);
	next(lx, &t);
	if (t.kind != T_END && t.kind != T_SEMI)
		return pin(out, "a KILL the agent cannot read");
	out->kill = true;
	return HD_MY_SQL_PLAIN;
}

/* One statement, from its first token; the lexer is left after its end. */
static HdMySqlKind
classify_one(Lexer *lx, HdMySqlClass *out)
{
	Tok			t;
	Tok			second;
	Lexer		peek;

	next(lx, &t);
	if (t.kind == T_END || t.kind == T_SEMI)
		return HD_MY_SQL_PLAIN;
	if (t.kind == T_PUNCT && *t.start == '(')
		return scan_rest(&t, lx, out);
	if (is_word(&t, "set"))
		return classify_set(lx, out);
	if (is_word(&t, "use"))
		return classify_use(lx, out);
	if (is_word(&t, "begin") || is_word(&t, "commit") || is_word(&t, "rollback") ||
		is_word(&t, "savepoint") || is_word(&t, "release"))
		out->txn_control = true;
	if (is_word(&t, "start"))
	{
		peek = *lx;
		next(&peek, &second);
		if (is_word(&second, "transaction"))
			out->txn_control = true;
	}
	if (is_word(&t, "lock") || is_word(&t, "unlock"))
	{
		peek = *lx;
		next(&peek, &second);
		if (is_word(&second, "tables") || is_word(&second, "table"))
			return pin(out, "LOCK TABLES");
	}
	if (is_word(&t, "prepare") || is_word(&t, "execute") || is_word(&t, "deallocate"))
		return pin(out, "an SQL prepared statement (PREPARE)");
	if (is_word(&t, "handler"))
		return pin(out, "HANDLER");
	if (is_word(&t, "load"))
	{
		Tok			third;

		peek = *lx;
		next(&peek, &second);
		next(&peek, &third);
		if ((is_word(&second, "data") || is_word(&second, "xml")) && is_word(&third, "local"))
			out->load_local = true;
	}
	if (is_word(&t, "kill"))
		return classify_kill(lx, out);
	if (is_word(&t, "xa"))
		return pin(out, "an XA transaction");
	if (is_word(&t, "show"))
	{
		peek = *lx;
		next(&peek, &second);
		if (is_word(&second, "warnings") || is_word(&second, "errors") || is_word(&second, "count"))
		{
			out->kind = HD_MY_SQL_DIAGNOSTICS;
			out->why = "the previous statement's diagnostics";
		}
	}
	return scan_rest(&t, lx, out);
}

void
hd_my_sql_classify(const char *sql, size_t len, HdMySqlClass *out)
{
	Lexer		lx = {sql, sql + len, false};
	int			statements = 0;

	memset(out, 0, sizeof(*out));
	out->kind = HD_MY_SQL_PLAIN;
	for (;;)
	{
		HdMySqlClass one;
		Tok			t;
		Lexer		peek;

		memset(&one, 0, sizeof(one));
		one.kind = HD_MY_SQL_PLAIN;
		peek = lx;
		next(&peek, &t);
		if (t.kind == T_END)
			break;
		if (t.kind == T_SEMI)
		{
			lx = peek;
			continue;
		}
		lx.ended = false;
		classify_one(&lx, &one);
		/* a SET or USE's scan stops at its end; others stop at the ';' */
		statements++;
		if (statements == 1)
			*out = one;
		else
		{
			out->multi = true;
			out->txn_control |= one.txn_control;
			out->load_local |= one.load_local;
			if (one.kill || out->kill)
				return (void) pin(out, "a KILL in a multi-statement text");
			if (one.kind == HD_MY_SQL_PIN)
				return (void) pin(out, one.why);
			if (one.kind == HD_MY_SQL_CARRY || one.kind == HD_MY_SQL_USE ||
				out->kind == HD_MY_SQL_CARRY || out->kind == HD_MY_SQL_USE)
				return (void) pin(out, "a SET or USE in a multi-statement text");
			if (one.kind == HD_MY_SQL_DIAGNOSTICS)
				*out = (HdMySqlClass) {.kind = HD_MY_SQL_DIAGNOSTICS, .why = one.why,
				.multi = true, .txn_control = out->txn_control};
		}
		if (out->kind == HD_MY_SQL_PIN)
			return;
		/* skip to the end of this statement, unless its reading got there */
		while (!lx.ended)
		{
			peek = lx;
			next(&peek, &t);
			if (t.kind == T_END)
				return;
			lx = peek;
			if (t.kind == T_SEMI)
				break;
		}
	}
}
