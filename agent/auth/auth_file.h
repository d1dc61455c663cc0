/*
 * auth_file.h
 *    The admin console's user list (setting auth_file), in PgBouncer's
 *    userlist.txt format:
 *
 *        ; comment            (so is a line starting with #)
 *        "alice" "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
 *        "bob" "md5<32 hex digits>"
 *        "carol" "a plaintext password"
 *
 *    Each entry is two double-quoted strings separated by blanks; a double
 *    quote inside one is written twice (""). Blank lines are ignored, and so
 *    is a comment after the second string.
 *
 * Contract:
 *   - hd_auth_file_load() reads path into *out: 0, or -1 with a message in
 *     err naming the file and the line (never the secret). On failure *out
 *     holds nothing to free. A user listed twice is an error (a typo would
 *     otherwise silently win or lose).
 *   - For a plaintext password the SCRAM secret is built once, at load, with
 *     a random salt: a client then sees the same salt on every attempt for
 *     the life of the loaded list. A SCRAM secret is parsed at load, and a
 *     malformed one refuses the file.
 *   - hd_auth_file_free() wipes the secrets before freeing them.
 */
#ifndef HD_AUTH_FILE_H
#define HD_AUTH_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "auth/scram.h"

typedef struct HdAuthUser
{
	char	   *name;
	char	   *secret;			/* as written: plaintext, md5 or SCRAM secret */
	HdSecretKind kind;
	bool		has_scram;		/* scram below is valid (plaintext or SCRAM entry) */
	HdScramSecret scram;
} HdAuthUser;

typedef struct HdAuthFile
{
	HdAuthUser *users;
	size_t		count;
} HdAuthFile;

extern int	hd_auth_file_load(const char *path, HdAuthFile *out, char *err, size_t errlen);
extern const HdAuthUser *hd_auth_file_find(const HdAuthFile *file, const char *name);
extern void hd_auth_file_free(HdAuthFile *file);

#endif							/* HD_AUTH_FILE_H */
