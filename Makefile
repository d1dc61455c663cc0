# hyperdrive: top-level build, on PGXS.
#
#   make                 build the extension (hyperdrive.so) and the agent
#   make install         install the extension into the server given by PG_CONFIG,
#                        and the agent: its binary, manual pages, systemd unit and
#                        an annotated sample settings file, under prefix
#                        (default /usr/local; DESTDIR honoured as PGXS does)
#   make installcheck    run pg_regress + isolation specs against a running server
#                        (it must have wal_level=logical; see docs/operations.md)
#   make tempcheck       the same, plus the TAP tests, against throwaway instances
#                        the suites start themselves (must not run as root:
#                        PostgreSQL refuses to); also tempcheck-regress,
#                        tempcheck-isolation, tempcheck-tap one by one
#   make agent           build only the agent binary, agent/hyperdrive
#   make bench           the benchmark suite against PgBouncer (bench/run, as root;
#                        never part of the tests or CI; see bench/README.md)
#
# scripts/test runs every suite as the README describes; scripts/dev starts a
# local origin.

PG_CONFIG ?= pg_config

MODULE_big = hyperdrive
OBJS = \
	extension/hyperdrive.o \
	extension/relation_family.o \
	extension/ddl_capture.o \
	extension/decoder.o \
	extension/record.o \
	extension/analyze.o \
	extension/session_state.o \
	extension/value_hash.o

EXTENSION = hyperdrive
# As PostgreSQL's contrib modules: one full script (0.2) and the updates from
# it; CREATE EXTENSION runs 0.2's, then 0.2--0.3.
DATA = extension/hyperdrive--0.2.sql extension/hyperdrive--0.1--0.2.sql \
	extension/hyperdrive--0.2--0.3.sql
PGFILEDESC = "hyperdrive - change stream and helpers for the hyperdrive caching agent"

REGRESS = stream_setup analyze_query analyze_bindings auth_lookup session_state stream_basic stream_txn stream_identity stream_keycap stream_partition \
	stream_inherit stream_truncate stream_ddl stream_options stream_databases stream_values \
	stream_values_icu
REGRESS_OPTS =
ISOLATION = commit_order watch_order
ISOLATION_OPTS =
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/extension
# -Wno-unused-parameter: the output-plugin and fmgr callbacks have fixed signatures.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = agent/hyperdrive agent/*.o agent/*/*.o results/ regression.diffs regression.out \
	output_iso/ tmp_check/ tmp_check_iso/ log/ tmp_regress.conf $(MAN_PAGES)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# ---------------------------------------------------------------------------
# The agent: a plain C11 program, built with its own flags (not the server's).
# -I. is for the one header it shares with the extension, named by its
# directory: #include "extension/stream_format.h" (the stream format's constants).
AGENT_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread -O2 -g -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Iagent -I. -I$(shell $(PG_CONFIG) --includedir)
# MariaDB Connector/C (libmariadb-dev): `hyperdrive check` logs in to a MySQL
# origin with it. Its include directory comes after -Iagent: the agent's own
# headers win a name they share.
MARIADB_CFLAGS := $(shell pkg-config --cflags libmariadb 2>/dev/null || mariadb_config --cflags)
MARIADB_LIBS := $(shell pkg-config --libs libmariadb 2>/dev/null || mariadb_config --libs)
AGENT_CFLAGS += $(MARIADB_CFLAGS)
AGENT_LIBS = -lev -lpq -lssl -lcrypto -lpg_query -llmdb -lsystemd $(MARIADB_LIBS)
AGENT_SRCS = $(wildcard agent/*.c) $(filter-out agent/tests/%,$(wildcard agent/*/*.c))
AGENT_OBJS = $(AGENT_SRCS:.c=.o)

all: agent
.PHONY: agent tempcheck tempcheck-regress tempcheck-isolation tempcheck-tap

agent: agent/hyperdrive

agent/%.o: agent/%.c $(wildcard agent/*/*.h) extension/stream_format.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -c -o $@ $<

agent/hyperdrive: $(AGENT_OBJS)
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -o $@ $^ $(AGENT_LIBS)

# A packager's version (make HYPERDRIVE_VERSION=0.1.0-2) replaces version.h's
# in --version, SHOW VERSION and the metrics. Objects already built are not
# rebuilt when it is given: use it on a clean tree (debian/rules does).
ifdef HYPERDRIVE_VERSION
AGENT_CFLAGS += -DHYPERDRIVE_VERSION='"$(HYPERDRIVE_VERSION)"'
endif

# ---------------------------------------------------------------------------
# Installing the agent (make install does it after the extension's files).
# PGXS sets prefix to the server's own (/usr); the agent's files go under
# /usr/local unless prefix is given on the command line (make install
# prefix=/usr, as a package does). The unit and the sample name the
# settings file in sysconfdir: /etc for prefix=/usr, else PREFIX/etc.
# Each directory can be given too (debian/rules: HD_UNITDIR=/lib/systemd/system).
ifeq ($(origin prefix),command line)
HD_PREFIX = $(prefix)
else
HD_PREFIX = /usr/local
endif
HD_BINDIR = $(HD_PREFIX)/bin
HD_MANDIR = $(HD_PREFIX)/share/man
HD_DOCDIR = $(HD_PREFIX)/share/doc/hyperdrive
HD_SYSCONFDIR = $(if $(filter /usr,$(HD_PREFIX)),/etc,$(HD_PREFIX)/etc)
HD_UNITDIR = $(HD_PREFIX)/lib/systemd/system
MAN_PAGES = docs/man/hyperdrive.1 docs/man/hyperdrive.ini.5
.PHONY: man install-agent

man: $(MAN_PAGES)

docs/man/%: docs/man/%.scd
	scdoc < $< > $@

# @bindir@ and @sysconfdir@ in the unit and the sample, for this prefix
HD_SUBST = sed -e 's|@bindir@|$(HD_BINDIR)|g' -e 's|@sysconfdir@|$(HD_SYSCONFDIR)|g'

install: install-agent

install-agent: agent/hyperdrive $(MAN_PAGES)
	install -d '$(DESTDIR)$(HD_BINDIR)' '$(DESTDIR)$(HD_MANDIR)/man1' '$(DESTDIR)$(HD_MANDIR)/man5' \
		'$(DESTDIR)$(HD_DOCDIR)' '$(DESTDIR)$(HD_UNITDIR)'
	install -m 755 agent/hyperdrive '$(DESTDIR)$(HD_BINDIR)/hyperdrive'
	install -m 644 docs/man/hyperdrive.1 '$(DESTDIR)$(HD_MANDIR)/man1/hyperdrive.1'
	install -m 644 docs/man/hyperdrive.ini.5 '$(DESTDIR)$(HD_MANDIR)/man5/hyperdrive.ini.5'
	$(HD_SUBST) packaging/hyperdrive.ini > '$(DESTDIR)$(HD_DOCDIR)/hyperdrive.ini'
	$(HD_SUBST) packaging/hyperdrive.service.in > '$(DESTDIR)$(HD_UNITDIR)/hyperdrive.service'
	chmod 644 '$(DESTDIR)$(HD_DOCDIR)/hyperdrive.ini' '$(DESTDIR)$(HD_UNITDIR)/hyperdrive.service'

# ---------------------------------------------------------------------------
# Regression tests against a temporary instance (wal_level=logical), the
# "make check" of an in-tree contrib module. The extension must be installed
# into the server given by PG_CONFIG first (make install).
PG_BINDIR := $(shell $(PG_CONFIG) --bindir)
PG_PKGLIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
TEMP_CONF = tmp_regress.conf

$(TEMP_CONF): $(srcdir)/tests/regress.conf $(srcdir)/tests/make-temp-config.sh
	sh $(srcdir)/tests/make-temp-config.sh $(PG_BINDIR) > $@

tempcheck: tempcheck-regress tempcheck-isolation tempcheck-tap

tempcheck-regress: $(TEMP_CONF)
	$(PG_PKGLIBDIR)/pgxs/src/test/regress/pg_regress --temp-instance=./tmp_check \
		--temp-config=$(TEMP_CONF) --bindir=$(PG_BINDIR) --inputdir=$(srcdir) \
		--dbname=$(CONTRIB_TESTDB) $(REGRESS_OPTS) $(REGRESS)

tempcheck-isolation: $(TEMP_CONF)
	$(PG_PKGLIBDIR)/pgxs/src/test/isolation/pg_isolation_regress --temp-instance=./tmp_check_iso \
		--temp-config=$(TEMP_CONF) --bindir=$(PG_BINDIR) --inputdir=$(srcdir) \
		--outputdir=output_iso --dbname=$(ISOLATION_TESTDB) $(ISOLATION_OPTS) $(ISOLATION)

# The TAP tests (t/*.pl) start their own instances with PostgreSQL::Test::Cluster.
tempcheck-tap: agent
	$(prove_installcheck)

# ---------------------------------------------------------------------------
# Unit tests of agent modules that stand alone (no server, no other agent
# sources): make agent-unit builds them, make agent-unit-check runs them, and
# t/005_auth_unit.pl runs them under prove. For a sanitizer build:
#   make -B agent-unit AGENT_EXTRA_CFLAGS='-fsanitize=address,undefined'
AGENT_AUTH_SRCS = agent/auth/auth.c agent/auth/scram.c agent/auth/saslprep.c
AGENT_AUTH_HDRS = agent/auth/auth.h agent/auth/scram.h agent/auth/saslprep.h
.PHONY: agent-unit agent-unit-check

AGENT_UNIT_TESTS = test_auth test_session test_store test_ext_batch test_cache_hint test_log \
	test_stmt test_race test_flight test_conn test_pool test_stream_record test_batch \
	test_cache_core test_client_protocol test_record_deps test_cache_params test_fresh_wait \
	test_mysql_auth test_conninfo test_my_sql test_my_proto test_my_lookup
agent-unit: $(addprefix agent/tests/,$(AGENT_UNIT_TESTS))
EXTRA_CLEAN += $(addprefix agent/tests/,$(AGENT_UNIT_TESTS))

# A client's extended-protocol batch as a state machine (no server). NDEBUG:
# a refused transition returns false for the test to see, instead of asserting.
agent/tests/test_batch: agent/tests/test_batch.c agent/pgwire/batch.c agent/pgwire/batch.h agent/base/log.c agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -DNDEBUG -Iagent -o $@ $< agent/pgwire/batch.c agent/base/log.c

# The client-protocol driver's contract (net/client_protocol.h), through
# PostgreSQL's table: framing, classification, errors, ReadyForQuery, idle.
# The test stands in for the few client.c/server.c/pool.c functions the
# driver calls (no loop, no socket).
AGENT_CLIENT_PROTOCOL_TEST_SRCS = agent/pgwire/pg_client_protocol.c agent/pgwire/proto.c \
	agent/pgwire/session.c agent/base/iobuf.c agent/base/text_buf.c agent/base/sql_quote.c
agent/tests/test_client_protocol: agent/tests/test_client_protocol.c $(AGENT_CLIENT_PROTOCOL_TEST_SRCS) \
		$(wildcard agent/*/*.h) agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_CLIENT_PROTOCOL_TEST_SRCS) -lpg_query

# The cache core's race rule and request coalescing (fake sessions).
agent/tests/test_race: agent/tests/test_race.c agent/cache/race.c agent/cache/race.h agent/cache/dep.h agent/base/log.c agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/cache/race.c agent/base/log.c

agent/tests/test_my_sql: agent/tests/test_my_sql.c agent/mywire/my_sql.c agent/mywire/my_sql.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/mywire/my_sql.c

agent/tests/test_fresh_wait: agent/tests/test_fresh_wait.c agent/cache/fresh_wait.c agent/cache/fresh_wait.h \
		agent/cache/flight.c agent/cache/flight.h agent/base/list.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/cache/fresh_wait.c agent/cache/flight.c

agent/tests/test_flight: agent/tests/test_flight.c agent/cache/flight.c agent/cache/flight.h agent/base/list.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/cache/flight.c

# The cache core through its seams: a fake origin driver and fake sessions,
# over a real LMDB store in a temporary directory (no server).
AGENT_CACHE_CORE_TEST_SRCS = agent/cache/cache.c agent/cache/store.c agent/cache/value_marks.c agent/cache/race.c \
	agent/cache/fresh_wait.c \
	agent/cache/flight.c agent/base/log.c agent/base/text_buf.c agent/config/configs.c \
	agent/base/ini.c agent/base/suggest.c
agent/tests/test_cache_core: agent/tests/test_cache_core.c $(AGENT_CACHE_CORE_TEST_SRCS) \
		agent/cache/cache.h agent/cache/origin.h agent/cache/change.h agent/cache/flight.h \
		agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_CACHE_CORE_TEST_SRCS) \
		-lev -llmdb -lcrypto

# A change record's dependencies under the precision columns (no server).
agent/tests/test_record_deps: agent/tests/test_record_deps.c agent/stream/record_deps.c \
		agent/stream/record_deps.h agent/stream/stream_record.h agent/cache/dep.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/stream/record_deps.c

# The connection's plain operations over a socketpair (no server).
agent/tests/test_conn: agent/tests/test_conn.c agent/net/conn.c agent/net/conn.h agent/base/iobuf.c agent/base/iobuf.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/net/conn.c agent/base/iobuf.c -lev

# The protocol-neutral pool, driven by fake connections and waiters (no sockets).
AGENT_POOL_TEST_SRCS = agent/pool/pool.c agent/base/log.c agent/base/stats.c agent/config/configs.c \
	agent/base/ini.c agent/base/suggest.c agent/base/text_buf.c
agent/tests/test_pool: agent/tests/test_pool.c $(AGENT_POOL_TEST_SRCS) agent/pool/pool.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_POOL_TEST_SRCS) -lev

# The compact-record decoder on records the extension wrote (agent/tests/data/,
# captured by scripts/capture-stream-fixtures; the test reads them, no server).
agent/tests/test_stream_record: agent/tests/test_stream_record.c agent/stream/stream_record.c \
		agent/stream/stream_record.h extension/stream_format.h agent/base/sql_quote.c \
		agent/base/sql_quote.h agent/base/text_buf.c agent/base/text_buf.h agent/base/be.h \
		agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/stream/stream_record.c \
		agent/base/sql_quote.c agent/base/text_buf.c

agent/tests/test_stmt: agent/tests/test_stmt.c agent/pgwire/stmt.c agent/pgwire/stmt.h agent/base/iobuf.h agent/base/be.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/pgwire/stmt.c

# An analysis's bindings and parameter types as PostgreSQL prints them, and
# the statement a fill runs to hash the client's parameters (no server).
AGENT_CACHE_PARAMS_TEST_SRCS = agent/pgwire/cache_params.c agent/pgwire/proto.c agent/base/iobuf.c
agent/tests/test_cache_params: agent/tests/test_cache_params.c $(AGENT_CACHE_PARAMS_TEST_SRCS) \
		agent/pgwire/cache_params.h agent/pgwire/proto.h agent/cache/dep.h agent/base/iobuf.h \
		agent/base/be.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_CACHE_PARAMS_TEST_SRCS)

# Origin connection strings (mysql:// URIs, libpq's) into configs, the
# protocol's checks and .conf keys, in a temporary state directory (no server).
AGENT_CONNINFO_TEST_SRCS = agent/config/conninfo.c agent/config/mysql_uri.c agent/config/configs.c \
	agent/base/ini.c agent/base/suggest.c agent/base/text_buf.c
agent/tests/test_conninfo: agent/tests/test_conninfo.c $(AGENT_CONNINFO_TEST_SRCS) \
		agent/config/conninfo.h agent/config/mysql_uri.h agent/config/configs.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_CONNINFO_TEST_SRCS) -lpq

agent/tests/test_log: agent/tests/test_log.c agent/base/log.c agent/base/log.h agent/config/settings.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/base/log.c

agent/tests/test_cache_hint: agent/tests/test_cache_hint.c agent/cache/cache_hint.c agent/cache/cache_hint.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/cache/cache_hint.c

agent/tests/test_ext_batch: agent/tests/test_ext_batch.c agent/pgwire/ext_batch.c agent/pgwire/ext_batch.h agent/base/iobuf.h agent/base/be.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/pgwire/ext_batch.c

agent/tests/test_session: agent/tests/test_session.c agent/pgwire/session.c agent/pgwire/session.h agent/base/text_buf.c agent/base/sql_quote.c agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/pgwire/session.c agent/base/text_buf.c agent/base/sql_quote.c -lpg_query

agent/tests/test_auth: agent/tests/test_auth.c $(AGENT_AUTH_SRCS) $(AGENT_AUTH_HDRS)
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_AUTH_SRCS) -lcrypto

# MySQL's password plugins and RSA (agent/auth/mysql_auth.c): OpenSSL only.
agent/tests/test_mysql_auth: agent/tests/test_mysql_auth.c agent/auth/mysql_auth.c agent/auth/mysql_auth.h \
		agent/tests/bytes.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/auth/mysql_auth.c -lcrypto

# Other users' hashes (agent/mywire/my_lookup.c): the query and the rule, no server.
AGENT_MY_LOOKUP_TEST_SRCS = agent/mywire/my_lookup.c agent/auth/mysql_auth.c agent/config/configs.c \
	agent/base/log.c agent/base/ini.c agent/base/suggest.c agent/base/text_buf.c
agent/tests/test_my_lookup: agent/tests/test_my_lookup.c $(AGENT_MY_LOOKUP_TEST_SRCS) agent/mywire/my_lookup.h \
		agent/mywire/my_int.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< $(AGENT_MY_LOOKUP_TEST_SRCS) -lev $(MARIADB_LIBS) -lcrypto

# The MySQL protocol's bytes (agent/mywire/my_proto.c) against MariaDB's
# captured replies (agent/tests/data/my_replies.inc) and built packets.
agent/tests/test_my_proto: agent/tests/test_my_proto.c agent/mywire/my_proto.c agent/mywire/my_proto.h \
		agent/base/iobuf.c agent/base/iobuf.h agent/tests/data/my_replies.inc agent/tests/bytes.h agent/tests/tap.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -Iagent/tests -o $@ $< agent/mywire/my_proto.c agent/base/iobuf.c

# The cache's LMDB store; agent/tests/test_store --bench is its micro-benchmark.
agent/tests/test_store: agent/tests/test_store.c agent/cache/store.c agent/cache/store.h agent/cache/dep.h agent/base/be.h \
		agent/cache/value_marks.c agent/cache/value_marks.h
	$(CC) $(AGENT_CFLAGS) $(AGENT_EXTRA_CFLAGS) -Iagent -o $@ $< agent/cache/store.c agent/cache/value_marks.c -llmdb -lcrypto

agent-unit-check: agent-unit
	set -e; for t in $(filter-out test_stream_record,$(AGENT_UNIT_TESTS)); do agent/tests/$$t; done
	agent/tests/test_stream_record agent/tests/data

tempcheck-tap: agent-unit

# ---------------------------------------------------------------------------
# Benchmarks (bench/README.md): the agent against PgBouncer and PostgreSQL on
# this machine. Not part of any test target.
.PHONY: bench
bench:
	$(srcdir)/bench/run
