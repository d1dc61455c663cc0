/*
 * test_conninfo.c
 *    A config's origin protocol: mysql:// and mariadb:// URIs read into a
 *    config (config/mysql_uri.c through hd_conninfo_apply()), a PostgreSQL
 *    string after a MySQL one, the checks of fields that must agree with the
 *    protocol (hd_config_check()), and the protocol and allow_load_local
 *    keys through a .conf file and back (config/configs.c). No server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/configs.h"
#include "config/conninfo.h"
#include "tests/tap.h"

typedef struct Parsed
{
	HdConfig	cfg;
	char	   *password;
	int			status;
	char		err[1024];
} Parsed;

static void
parse(Parsed *p, const char *uri)
{
	hd_config_init(&p->cfg);
	p->err[0] = '\0';
	p->status = hd_conninfo_apply(uri, &p->cfg, &p->password, p->err, sizeof(p->err));
}

static void
done(Parsed *p)
{
	hd_free_secret(p->password);
	hd_config_free(&p->cfg);
}

static bool
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* uri is refused, with a message that has `want` and none of `secret`. */
static void
refused(const char *uri, const char *want, const char *secret, const char *name)
{
	Parsed		p;
	char		label[256];

	parse(&p, uri);
	snprintf(label, sizeof(label), "%s: refused", name);
	ok(p.status == -1 && p.password == NULL, label);
	snprintf(label, sizeof(label), "%s: the message says why", name);
	ok(strstr(p.err, want) != NULL, label);
	if (strstr(p.err, want) == NULL)
		printf("# message: %s\n", p.err);
	if (secret != NULL)
	{
		snprintf(label, sizeof(label), "%s: the message does not show the password", name);
		ok(strstr(p.err, secret) == NULL, label);
	}
	done(&p);
}

static void
test_full_uri(void)
{
	Parsed		p;

	parse(&p, "mysql://app:s%40cr%2Fet@db.example.com:3307/shop");
	ok(p.status == 0, "mysql:// URI with everything: accepted");
	ok(p.cfg.protocol == HD_PROTOCOL_MYSQL, "protocol mysql");
	ok(streq(p.cfg.host, "db.example.com") && p.cfg.port == 3307, "host and port");
	ok(streq(p.cfg.database, "shop") && streq(p.cfg.user, "app"), "database and user");
	ok(streq(p.password, "s@cr/et"), "the password, percent-decoded");
	ok(p.cfg.caching_disabled, "caching disabled (not available for MySQL yet)");
	ok(p.cfg.sslmode == HD_SSL_PREFER && p.cfg.sslrootcert == NULL,
	   "no TLS option: sslmode keeps its default (prefer, MySQL's PREFERRED)");
	ok(hd_config_check(&p.cfg, p.err, sizeof(p.err)) == 0, "the result passes hd_config_check");
	done(&p);

	parse(&p, "mariadb://u%20x@127.0.0.1/d%2Db");
	ok(p.status == 0 && p.cfg.protocol == HD_PROTOCOL_MYSQL, "mariadb:// is the same");
	ok(p.cfg.port == 3306, "default port 3306");
	ok(streq(p.cfg.user, "u x") && streq(p.cfg.database, "d-b"), "user and database decoded");
	ok(p.password == NULL, "no password: NULL");
	done(&p);

	parse(&p, "MySQL://u:@h/d");
	ok(p.status == 0 && p.cfg.protocol == HD_PROTOCOL_MYSQL, "the scheme in any case");
	ok(p.password == NULL, "an empty password: NULL");
	done(&p);

	parse(&p, "mysql://u:a:b+c@h/d");
	ok(p.status == 0 && streq(p.password, "a:b+c"),
	   "the password runs to the last @; a second : and a + are its own");
	done(&p);

	parse(&p, "mysql://u:p@ss@h/d");
	ok(p.status == 0 && streq(p.password, "p@ss") && streq(p.cfg.host, "h"),
	   "an unescaped @ in the password: the last @ ends it");
	done(&p);
}

static void
test_ipv6(void)
{
	Parsed		p;

	parse(&p, "mysql://u@[::1]:3310/d");
	ok(p.status == 0 && streq(p.cfg.host, "::1") && p.cfg.port == 3310, "[::1]:3310");
	done(&p);
	parse(&p, "mysql://u@[fe80::1%25eth0]/d");
	ok(p.status == 0 && streq(p.cfg.host, "fe80::1%eth0") && p.cfg.port == 3306,
	   "[v6%25zone] without a port");
	done(&p);
	refused("mysql://u@[::1/d", "brackets", NULL, "an unclosed [");
	refused("mysql://u@[::1]x/d", "brackets", NULL, "text after ]");
}

static void
test_ssl_options(void)
{
	static const struct
	{
		const char *option;
		HdSslMode	mode;
	}			modes[] = {
		{"ssl-mode=DISABLED", HD_SSL_DISABLE},
		{"ssl-mode=PREFERRED", HD_SSL_PREFER},
		{"ssl-mode=REQUIRED", HD_SSL_REQUIRE},
		{"ssl-mode=VERIFY_CA", HD_SSL_VERIFY_CA},
		{"ssl-mode=VERIFY_IDENTITY", HD_SSL_VERIFY_FULL},
		{"ssl-mode=verify_identity", HD_SSL_VERIFY_FULL},
		{"sslmode=require", HD_SSL_REQUIRE},
		{"sslmode=verify-full", HD_SSL_VERIFY_FULL},
	};
	Parsed		p;
	char		uri[256];
	char		cwd[1024];
	char	   *expected;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
	{
		char		label[128];

		snprintf(uri, sizeof(uri), "mysql://u@h/d?%s", modes[i].option);
		parse(&p, uri);
		snprintf(label, sizeof(label), "%s -> sslmode %s", modes[i].option,
				 hd_sslmode_name(modes[i].mode));
		ok(p.status == 0 && p.cfg.sslmode == modes[i].mode, label);
		done(&p);
	}
	refused("mysql://u@h/d?ssl-mode=ALLOW", "DISABLED, PREFERRED, REQUIRED", NULL, "ssl-mode ALLOW");
	refused("mysql://u@h/d?sslmode=maybe", "disable, allow, prefer", NULL, "sslmode maybe");
	refused("mysql://u@h/d?ssl-mode=", "has no value", NULL, "ssl-mode without a value");
	refused("mysql://u@h/d?ssl-mode=REQUIRED&sslmode=disable", "twice", NULL,
			"ssl-mode and sslmode both");

	/* ssl-ca: a file of this machine, made absolute (the test runs from the tree) */
	parse(&p, "mysql://u@h/d?ssl-mode=VERIFY_CA&ssl-ca=Makefile");
	expected = getcwd(cwd, sizeof(cwd)) ? realpath("Makefile", NULL) : NULL;
	ok(p.status == 0 && expected != NULL && streq(p.cfg.sslrootcert, expected),
	   "ssl-ca=FILE: sslrootcert is its absolute path");
	free(expected);
	done(&p);
	parse(&p, "mysql://u@h/d?sslrootcert=system&ssl-mode=REQUIRED");
	ok(p.status == 0 && streq(p.cfg.sslrootcert, "system") && p.cfg.sslmode == HD_SSL_REQUIRE,
	   "sslrootcert=system, options in any order");
	done(&p);
	refused("mysql://u@h/d?ssl-ca=/no/such/ca.pem", "cannot use", NULL, "ssl-ca of a missing file");
	refused("mysql://u@h/d?ssl-ca=/etc/hostname&sslrootcert=system", "twice", NULL,
			"ssl-ca and sslrootcert both");
}

static void
test_refused(void)
{
	refused("mysql://u:Sekr1t@h/d?charset=utf8", "option \"charset\" is not supported", "Sekr1t",
			"an unknown option, named");
	refused("mysql://u:Sekr1t@h/d?a%20b=1", "its name is not shown", "Sekr1t",
			"an unknown option with an odd name, not echoed");
	refused("mysql://u:Sekr1t@/d", "no host", "Sekr1t", "no host");
	refused("mysql://:Sekr1t@h/d", "no user", "Sekr1t", "no user");
	refused("mysql://h/d", "no user", NULL, "no user info at all");
	refused("mysql://u:Sekr1t@h", "no database", "Sekr1t", "no database");
	refused("mysql://u:Sekr1t@h/", "no database", "Sekr1t", "an empty database");
	refused("mysql://u:Sekr1t@h:0/d", "not valid", "Sekr1t", "port 0");
	refused("mysql://u:Sekr1t@h:65536/d", "not valid", "Sekr1t", "port 65536");
	refused("mysql://u:Sekr1t@h:33o6/d", "from 1 to 65535", "Sekr1t", "a port with a letter");
	refused("mysql://u:Sekr1t@h:/d", "from 1 to 65535", "Sekr1t", "an empty port");
	refused("mysql://u:Sekr1t@h/d#x", "fragment", "Sekr1t", "a fragment");
	refused("mysql://u:Sek%2@h/d", "percent-encoding", "Sek", "a truncated %-sequence");
	refused("mysql://u:Sek%zzr@h/d", "percent-encoding", "Sek", "a %-sequence that is not hex");
	refused("mysql://u:Sek%00r@h/d", "percent-encoding", "Sek", "%00");
	refused("mysql://u@%2Ftmp%2Fmysql.sock/d", "Unix socket", NULL, "a socket path as host");
	refused("mysql://u@h/a/b", "holds a \"/\"", NULL, "a database with a /");
	refused("mysql://u@h/d%01", "not valid", NULL, "a control character in the database");

	/*
	 * A password with an unescaped '/': the rest of it lands in the path.
	 * Nothing of it may appear in the message.
	 */
	refused("mysql://u:Sek/r1tX@h/d", "no user", "r1tX", "an unescaped / in the password");
	refused("mysql://u:Sek?r1tX@h/d", "no user", "r1tX", "an unescaped ? in the password");
	refused("mysql://u:Sekr1tX#@h/d", "fragment", "Sekr1tX", "an unescaped # in the password");
}

static void
test_postgresql_after_mysql(void)
{
	Parsed		p;
	char	   *pw = NULL;

	parse(&p, "mysql://u:pw@h:3307/d");
	p.cfg.allow_load_local = true;
	ok(hd_config_check(&p.cfg, p.err, sizeof(p.err)) == 0, "allow_load_local on a MySQL config: fine");
	hd_free_secret(p.password);
	p.password = NULL;
	ok(hd_conninfo_apply("postgresql://pu@pghost/pgdb", &p.cfg, &pw, p.err, sizeof(p.err)) == 0,
	   "then a postgresql:// URI over it (update): accepted");
	ok(p.cfg.protocol == HD_PROTOCOL_POSTGRESQL && p.cfg.port == 5432,
	   "protocol postgresql, port 5432 again");
	ok(!p.cfg.allow_load_local, "allow_load_local false (MySQL's only)");
	ok(hd_config_check(&p.cfg, p.err, sizeof(p.err)) == 0, "and it passes hd_config_check");
	hd_free_secret(pw);
	done(&p);

	parse(&p, "host=h user=u dbname=d");
	ok(p.status == 0 && p.cfg.protocol == HD_PROTOCOL_POSTGRESQL, "key=value: protocol postgresql");
	done(&p);
}

static void
test_check(void)
{
	HdConfig	cfg;
	char		err[512];

	hd_config_init(&cfg);
	ok(cfg.protocol == HD_PROTOCOL_POSTGRESQL && !cfg.allow_load_local,
	   "defaults: postgresql, allow_load_local false");
	ok(hd_config_set(&cfg, "host", "h", "host", err, sizeof(err)) == 0 &&
	   hd_config_set(&cfg, "database", "d", "database", err, sizeof(err)) == 0 &&
	   hd_config_set(&cfg, "user", "u", "user", err, sizeof(err)) == 0, "fields set");
	ok(hd_config_set(&cfg, "allow_load_local", "true", "--allow-load-local", err, sizeof(err)) == 0,
	   "allow_load_local takes a boolean");
	ok(hd_config_check(&cfg, err, sizeof(err)) == -1 && strstr(err, "allow_load_local is for MySQL"),
	   "allow_load_local on a PostgreSQL config: refused");
	ok(hd_config_set(&cfg, "protocol", "mysql", "protocol", err, sizeof(err)) == 0,
	   "protocol mysql");
	ok(hd_config_check(&cfg, err, sizeof(err)) == -1 && strstr(err, "caching is not available"),
	   "a MySQL config with caching on: refused, saying it comes later");
	cfg.caching_disabled = true;
	ok(hd_config_check(&cfg, err, sizeof(err)) == 0, "with caching disabled: fine");
	cfg.sslmode = HD_SSL_ALLOW;
	ok(hd_config_check(&cfg, err, sizeof(err)) == -1 && strstr(err, "allow has no MySQL"),
	   "sslmode allow on a MySQL config: refused");
	ok(hd_config_set(&cfg, "protocol", "oracle", "protocol", err, sizeof(err)) == -1 &&
	   strstr(err, "postgresql, mysql") != NULL, "an unknown protocol: refused, listing both");
	ok(!hd_config_caches(&cfg), "a MySQL config: the cache does not serve it (even with caching on)");
	cfg.caching_disabled = false;
	ok(!hd_config_caches(&cfg), "... caching_disabled false changes nothing");
	cfg.protocol = HD_PROTOCOL_POSTGRESQL;
	ok(hd_config_caches(&cfg), "a PostgreSQL config with caching on: served");
	cfg.caching_disabled = true;
	ok(!hd_config_caches(&cfg), "a PostgreSQL config with caching off: not served");
	strcpy(cfg.name, "shop");
	cfg.protocol = HD_PROTOCOL_MYSQL;
	hd_config_wrong_listener(&cfg, 3307, err, sizeof(err));
	ok(streq(err, "config \"shop\" is a MySQL origin: connect to port 3307 with a MySQL client"),
	   "wrong listener, MySQL config: names the MySQL port");
	hd_config_wrong_listener(&cfg, 0, err, sizeof(err));
	ok(streq(err, "config \"shop\" is a MySQL origin, and the agent has no MySQL listener "
			 "(set mysql_listen_port)"), "wrong listener, no MySQL listener: names the setting");
	cfg.protocol = HD_PROTOCOL_POSTGRESQL;
	hd_config_wrong_listener(&cfg, 6432, err, sizeof(err));
	ok(streq(err, "config \"shop\" is a PostgreSQL origin: connect to port 6432 with a PostgreSQL client"),
	   "wrong listener, PostgreSQL config: names listen_port's port");
	ok(streq(hd_protocol_name(HD_PROTOCOL_MYSQL), "mysql") &&
	   streq(hd_protocol_name(HD_PROTOCOL_POSTGRESQL), "postgresql"), "hd_protocol_name");
	ok(hd_protocol_default_port(HD_PROTOCOL_MYSQL) == 3306 &&
	   hd_protocol_default_port(HD_PROTOCOL_POSTGRESQL) == 5432, "hd_protocol_default_port");
	hd_config_free(&cfg);
}

static void
write_text(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	if (f != NULL)
	{
		fputs(text, f);
		fclose(f);
	}
}

#define ID1 "0123456789abcdef0123456789abcdef"

static void
test_conf_files(void)
{
	char		dir[] = "/tmp/hd_test_conninfo_XXXXXX";
	char		path[512];
	char		err[1024];
	HdConfigList list;
	Parsed		p;

	if (mkdtemp(dir) == NULL)
	{
		ok(0, "mkdtemp");
		return;
	}
	parse(&p, "mysql://u@h:3307/d");
	strcpy(p.cfg.id, ID1);
	strcpy(p.cfg.name, "my");
	p.cfg.allow_load_local = true;
	ok(hd_config_save(dir, &p.cfg, err, sizeof(err)) == 0, "a MySQL config saved");
	done(&p);
	ok(hd_configs_load(dir, &list, err, sizeof(err)) == 0 && list.count == 1, "and loaded");
	ok(list.count == 1 && list.items[0].protocol == HD_PROTOCOL_MYSQL &&
	   list.items[0].allow_load_local && list.items[0].caching_disabled && list.items[0].port == 3307,
	   "protocol, allow_load_local, caching_disabled and port kept");
	hd_configs_free(&list);

	snprintf(path, sizeof(path), "%s/configs/%s.conf", dir, ID1);
	write_text(path, "id = " ID1 "\nname = old\nhost = h\nport = 5432\ndatabase = d\nuser = u\n");
	ok(hd_configs_load(dir, &list, err, sizeof(err)) == 0 && list.count == 1 &&
	   list.items[0].protocol == HD_PROTOCOL_POSTGRESQL && !list.items[0].allow_load_local,
	   "a file without protocol (written before it existed): postgresql");
	if (list.count == 1)
		hd_configs_free(&list);

	write_text(path, "id = " ID1 "\nname = bad\nhost = h\nport = 3306\ndatabase = d\nuser = u\n"
			   "protocol = mysql\ncaching_disabled = false\n");
	ok(hd_configs_load(dir, &list, err, sizeof(err)) == -1 &&
	   strstr(err, "caching is not available") && strstr(err, "hyperdrive delete " ID1),
	   "a file of a MySQL config with caching on: refused, with the way out");

	write_text(path, "id = " ID1 "\nname = bad\nhost = h\nport = 3306\ndatabase = d\nuser = u\n"
			   "protocol = mssql\n");
	ok(hd_configs_load(dir, &list, err, sizeof(err)) == -1 && strstr(err, "protocol must be one of"),
	   "a file with an unknown protocol: refused");

	unlink(path);
	snprintf(path, sizeof(path), "%s/configs/.lock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/configs", dir);
	rmdir(path);
	rmdir(dir);
}

int
main(void)
{
	test_full_uri();
	test_ipv6();
	test_ssl_options();
	test_refused();
	test_postgresql_after_mysql();
	test_check();
	test_conf_files();
	return tap_done();
}
