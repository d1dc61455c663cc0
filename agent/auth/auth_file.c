/*
 * auth_file.c
 *    See auth_file.h.
 */
#include "auth/auth_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/configs.h"			/* hd_free_secret */

/*
 * A double-quoted string at *p ("" inside is one quote), into a new string.
 * Returns NULL if *p is not such a string (*oom set if memory ran out).
 */
static char *
take_quoted(const char **p, bool *oom)
{
	const char *s = *p;
	char	   *out;
	size_t		n = 0;

	if (*s != '"')
		return NULL;
	out = malloc(strlen(s) + 1);
	if (out == NULL)
	{
		*oom = true;
		return NULL;
	}
	s++;
	for (;;)
	{
		if (*s == '\0')
		{
			hd_free_secret(out);	/* unterminated */
			return NULL;
		}
		if (*s == '"')
		{
			if (s[1] != '"')
				break;
			s++;
		}
		out[n++] = *s++;
	}
	out[n] = '\0';
	*p = s + 1;
	return out;
}

static const char *
skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* One entry line into *user; returns NULL or what is wrong with it. */
static const char *
parse_line(const char *line, HdAuthUser *user, bool *oom)
{
	const char *p = skip_blanks(line);
	const char *after_name;
	HdAuthError auth_err;

	user->name = take_quoted(&p, oom);
	if (user->name == NULL)
		return "expected \"user\" \"password\" (PgBouncer's userlist.txt format)";
	if (user->name[0] == '\0')
		return "the user name is empty";
	after_name = p;
	p = skip_blanks(p);
	if (p == after_name)
		return "expected blanks, then the password in double quotes, after the user name";
	user->secret = take_quoted(&p, oom);
	if (user->secret == NULL)
		return "expected the password in double quotes after the user name";
	p = skip_blanks(p);
	if (*p != '\0' && *p != ';' && *p != '#')
		return "unexpected text after the password (a comment starts with ; or #)";

	user->kind = hd_secret_kind(user->secret);
	switch (user->kind)
	{
		case HD_SECRET_SCRAM:
			if (!hd_scram_parse_secret(user->secret, &user->scram))
				return "malformed SCRAM-SHA-256 secret";
			user->has_scram = true;
			break;
		case HD_SECRET_PLAINTEXT:
			{
				unsigned char salt[HD_SCRAM_SALT_LEN];

				if (!hd_random_bytes(salt, sizeof(salt)) ||
					hd_scram_secret_from_password(user->secret, salt, sizeof(salt),
												  HD_SCRAM_ITERATIONS, &user->scram,
												  &auth_err) != HD_AUTH_OK)
					return "could not build a SCRAM secret from the password";
				user->has_scram = true;
				break;
			}
		case HD_SECRET_MD5:
			user->has_scram = false;
			break;
	}
	return NULL;
}

static void
free_user(HdAuthUser *user)
{
	free(user->name);
	hd_free_secret(user->secret);
	explicit_bzero(user, sizeof(*user));
}

int
hd_auth_file_load(const char *path, HdAuthFile *out, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	unsigned	lineno = 0;
	int			rc = 0;

	memset(out, 0, sizeof(*out));
	if (f == NULL)
	{
		snprintf(err, errlen, "auth_file %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0)
	{
		HdAuthUser	user = {0};
		HdAuthUser *grown;
		const char *problem;
		const char *p;
		bool		oom = false;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		p = skip_blanks(line);
		if (*p == '\0' || *p == ';' || *p == '#')
			continue;
		problem = parse_line(line, &user, &oom);
		if (problem == NULL && hd_auth_file_find(out, user.name) != NULL)
			problem = "this user is already listed above; list each user once";
		if (oom)
			problem = "out of memory";
		if (problem == NULL)
		{
			grown = realloc(out->users, (out->count + 1) * sizeof(HdAuthUser));
			if (grown == NULL)
				problem = "out of memory";
			else
			{
				out->users = grown;
				out->users[out->count++] = user;
				continue;
			}
		}
		free_user(&user);
		snprintf(err, errlen, "auth_file %s:%u: %s", path, lineno, problem);
		rc = -1;
		break;
	}
	if (rc == 0 && ferror(f))
	{
		snprintf(err, errlen, "auth_file %s: read error", path);
		rc = -1;
	}
	if (line)
	{
		memset(line, 0, cap);
		free(line);
	}
	fclose(f);
	if (rc < 0)
		hd_auth_file_free(out);
	return rc;
}

const HdAuthUser *
hd_auth_file_find(const HdAuthFile *file, const char *name)
{
	for (size_t i = 0; i < file->count; i++)
		if (strcmp(file->users[i].name, name) == 0)
			return &file->users[i];
	return NULL;
}

void
hd_auth_file_free(HdAuthFile *file)
{
	for (size_t i = 0; i < file->count; i++)
		free_user(&file->users[i]);
	free(file->users);
	memset(file, 0, sizeof(*file));
}
