/*
 * mysql_stmt_client.c
 *    Prepared statements of two MySQL sessions on one origin connection
 *    through the agent, with MariaDB Connector/C's statement API, which
 *    (unlike the Node and Python drivers) sends a statement's parameter
 *    types only with its first execute after a bind: the agent must send
 *    each session's own types wherever the origin has another's, or none.
 *    Built and run by t/102_mysql_pooling.pl; prints "ok - ..." or
 *    "not ok - ...: why" per check, then "done".
 *
 *    mysql_stmt_client HOST PORT USER PASSWORD DATABASE
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *host, *user, *password, *database;
static unsigned port;

static void
say(int ok, const char *what, const char *why)
{
	if (ok)
		printf("ok - %s\n", what);
	else
		printf("not ok - %s: %s\n", what, why);
	fflush(stdout);
}

static MYSQL *
session(void)
{
	MYSQL	   *m = mysql_init(NULL);

	if (!mysql_real_connect(m, host, user, password, database, port, NULL, 0))
	{
		say(0, "connect", mysql_error(m));
		exit(1);
	}
	return m;
}

/* A prepared "SELECT CONCAT('[', ?, ']')" of session m. */
static MYSQL_STMT *
prepare(MYSQL *m)
{
	MYSQL_STMT *s = mysql_stmt_init(m);
	const char *sql = "SELECT CONCAT('[', ?, ']')";

	if (mysql_stmt_prepare(s, sql, strlen(sql)) != 0)
	{
		say(0, "prepare", mysql_stmt_error(s));
		exit(1);
	}
	return s;
}

/* Execute s (its parameters bound before), its one row's text into out. */
static int
run(MYSQL_STMT *s, char *out, size_t outlen)
{
	MYSQL_BIND	r;
	unsigned long len = 0;
	char		buf[64] = "";

	if (mysql_stmt_execute(s) != 0)
	{
		snprintf(out, outlen, "error: %s", mysql_stmt_error(s));
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.buffer_type = MYSQL_TYPE_STRING;
	r.buffer = buf;
	r.buffer_length = sizeof(buf) - 1;
	r.length = &len;
	if (mysql_stmt_bind_result(s, &r) != 0 || mysql_stmt_fetch(s) != 0)
	{
		snprintf(out, outlen, "error: %s", mysql_stmt_error(s));
		mysql_stmt_free_result(s);
		return -1;
	}
	buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = '\0';
	snprintf(out, outlen, "%s", buf);
	mysql_stmt_free_result(s);
	return 0;
}

static void
expect(MYSQL_STMT *s, const char *want, const char *what)
{
	char		got[128];
	char		why[300];

	run(s, got, sizeof(got));
	snprintf(why, sizeof(why), "got \"%s\", want \"%s\"", got, want);
	say(strcmp(got, want) == 0, what, why);
}

int
main(int argc, char **argv)
{
	MYSQL	   *a;
	MYSQL	   *b;
	MYSQL_STMT *sa;
	MYSQL_STMT *sb;
	MYSQL_BIND	pa;
	MYSQL_BIND	pb;
	long long	n = 42;
	char		text[16] = "bee";
	unsigned long text_len = 3;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DATABASE\n", argv[0]);
		return 2;
	}
	host = argv[1];
	port = (unsigned) atoi(argv[2]);
	user = argv[3];
	password = argv[4];
	database = argv[5];
	a = session();
	b = session();
	sa = prepare(a);
	sb = prepare(b);

	/* a: an integer; its first execute sends the types */
	memset(&pa, 0, sizeof(pa));
	pa.buffer_type = MYSQL_TYPE_LONGLONG;
	pa.buffer = &n;
	mysql_stmt_bind_param(sa, &pa);
	expect(sa, "[42]", "session a executes with an integer (types sent)");
	n = 43;
	expect(sa, "[43]", "and again without types (the origin keeps them)");

	/* b: the same text with a string, on the same origin connection */
	memset(&pb, 0, sizeof(pb));
	pb.buffer_type = MYSQL_TYPE_STRING;
	pb.buffer = text;
	pb.buffer_length = sizeof(text);
	pb.length = &text_len;
	mysql_stmt_bind_param(sb, &pb);
	expect(sb, "[bee]", "session b executes the same statement with a string");
	memcpy(text, "wasp", 5);
	text_len = 4;
	expect(sb, "[wasp]", "and again without types");

	/* a again, sending no types: its own must reach the origin, not b's */
	n = 44;
	expect(sa, "[44]", "session a again without types: its integer, not read as b's string");
	expect(sb, "[wasp]", "and b its string");

	/* a statement closed and prepared again */
	mysql_stmt_close(sa);
	sa = prepare(a);
	mysql_stmt_bind_param(sa, &pa);
	n = 45;
	expect(sa, "[45]", "a statement prepared again after a close");
	mysql_stmt_close(sa);
	mysql_stmt_close(sb);
	mysql_close(a);
	mysql_close(b);
	printf("done\n");
	return 0;
}
