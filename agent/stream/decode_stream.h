/*
 * decode_stream.h
 *    The "decode-stream" subcommand: compact records in, text records out.
 *
 * Contract: hd_decode_stream_main() runs
 *     hyperdrive decode-stream [--no-xids] [--no-lsn] [--no-oids] [--timestamp]
 * with argv[0] = "decode-stream". Each line of `in` is one compact record as a
 * bytea in PostgreSQL's hex output form (\x4802...; a trailing \r is ignored).
 * For each, it writes the record's text rendering and a newline to `out`, the
 * way pg_recvlogical writes text records. The switches mirror the plugin's
 * include-xids/include-lsn/include-oids options (all on by default) and
 * include-timestamp (off by default, unlike the plugin's option, because tests
 * compare against include-timestamp=0 output; the time is in UTC, as the
 * plugin prints it). On the first malformed line it writes a message naming the line to
 * `err` and returns 1, having written the records before it; on a bad command
 * line it returns 2. Returns 0 otherwise.
 */
#ifndef HD_DECODE_STREAM_H
#define HD_DECODE_STREAM_H

#include <stdio.h>

extern int	hd_decode_stream_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);
extern void hd_decode_stream_usage(FILE *out);

#endif							/* HD_DECODE_STREAM_H */
