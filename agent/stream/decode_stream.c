/*
 * decode_stream.c
 *    The "decode-stream" subcommand (see decode_stream.h).
 *
 * It exists to check the compact format against the text format from the
 * outside: a test reads the same slot both ways and requires this program's
 * rendering of the compact records to be byte-identical to the server's text.
 */
#include "stream/decode_stream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "stream/stream_record.h"

#define PROG "hyperdrive decode-stream"

void
hd_decode_stream_usage(FILE *out)
{
	fprintf(out,
			"Usage: hyperdrive decode-stream [--no-xids] [--no-lsn] [--no-oids] [--timestamp]\n"
			"  Reads compact change-stream records, one bytea in hex form (\\x48...) per\n"
			"  line, from stdin, and prints each in the text format.\n"
			"  --no-xids, --no-lsn, --no-oids   like include-xids/-lsn/-oids = off\n"
			"  --timestamp                      show commit_time (in UTC, like include-timestamp)\n");
}

/* Returns false on an unknown argument. */
static bool
parse_options(int argc, char **argv, HdTextOptions *opts)
{
	*opts = (HdTextOptions) {true, true, false, true};
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--no-xids") == 0)
			opts->include_xids = false;
		else if (strcmp(argv[i], "--no-lsn") == 0)
			opts->include_lsn = false;
		else if (strcmp(argv[i], "--no-oids") == 0)
			opts->include_oids = false;
		else if (strcmp(argv[i], "--timestamp") == 0)
			opts->include_timestamp = true;
		else
			return false;
	}
	return true;
}

/*
 * Decode "\xHEX" in place into line itself (the bytes are never longer than
 * the text). Returns the byte count, or -1 with a message in problem.
 */
static long
unhex_line(char *line, size_t len, char *problem, size_t problem_size)
{
	unsigned char *bytes = (unsigned char *) line;
	size_t		n = 0;

	if (len < 2 || line[0] != '\\' || line[1] != 'x')
	{
		snprintf(problem, problem_size, "not a bytea in hex form (expected \\x...)");
		return -1;
	}
	if ((len - 2) % 2 != 0)
	{
		snprintf(problem, problem_size, "odd number of hex digits");
		return -1;
	}
	for (size_t i = 2; i < len; i += 2)
	{
		int			hi = hd_hex_value(line[i]);
		int			lo = hd_hex_value(line[i + 1]);

		if (hi < 0 || lo < 0)
		{
			snprintf(problem, problem_size, "invalid hex digit at column %zu",
					 i + (hi < 0 ? 1 : 2));
			return -1;
		}
		bytes[n++] = (unsigned char) (hi << 4 | lo);
	}
	return (long) n;
}

/* Decode and print one line; false (with a message on err) if malformed. */
static bool
process_line(char *line, size_t len, unsigned long lineno, const HdTextOptions *opts,
			 FILE *out, FILE *err)
{
	char		problem[128];
	long		nbytes;
	HdRecord	record;
	HdDecodeError derr;
	char	   *text;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	nbytes = unhex_line(line, len, problem, sizeof(problem));
	if (nbytes < 0)
	{
		fprintf(err, "%s: line %lu: %s\n", PROG, lineno, problem);
		return false;
	}
	if (hd_record_decode((unsigned char *) line, (size_t) nbytes, &record, &derr) != 0)
	{
		fprintf(err, "%s: line %lu: malformed record: %s\n", PROG, lineno, derr.message);
		return false;
	}
	text = hd_record_render_text(&record, opts);
	hd_record_free(&record);
	if (text == NULL)
	{
		fprintf(err, "%s: line %lu: out of memory\n", PROG, lineno);
		return false;
	}
	fprintf(out, "%s\n", text);
	free(text);
	return true;
}

int
hd_decode_stream_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
	HdTextOptions opts;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	unsigned long lineno = 0;
	int			status = 0;

	if (!parse_options(argc, argv, &opts))
	{
		hd_decode_stream_usage(err);
		return 2;
	}
	while ((len = getline(&line, &cap, in)) >= 0)
	{
		if (!process_line(line, (size_t) len, ++lineno, &opts, out, err))
		{
			status = 1;
			break;
		}
	}
	free(line);
	if (status == 0 && ferror(in))
	{
		fprintf(err, "%s: error reading standard input\n", PROG);
		status = 1;
	}
	if (fflush(out) != 0 || ferror(out))
	{
		fprintf(err, "%s: error writing standard output\n", PROG);
		status = 1;
	}
	return status;
}
