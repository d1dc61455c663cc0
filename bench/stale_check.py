#!/usr/bin/env python3
"""The `stale` scenario's checker: concurrent writers and readers, and a count
of the reads through the agent that returned a value older than a commit
acknowledged before the read began.

usage: stale_check.py HOST ORIGIN_PORT AGENT_PORT USER ORIGIN_DB AGENT_DB SECONDS

The password comes from PGPASSWORD. Table bench_stale (id int PRIMARY KEY,
v bigint NOT NULL) must hold rows 1..STALE_ROWS. Python standard library only
(bench/inval_probe.py's connection). Environment (defaults):

  STALE_ROWS=100            rows read and written
  STALE_READERS=6           reader processes, through the agent (AGENT_DB,
                            caching on)
  STALE_ORIGIN_WRITERS=2    writer processes on the origin directly
  STALE_AGENT_WRITERS=2     writer processes through the agent
  STALE_WRITE_RATE=500      writes per second, all writers together (paced)
  STALE_DUMP=FILE           also write every stale read there: read start,
                            ack and staleness, wall-clock seconds

Every writer owns the rows whose (id - 1) modulo the number of writers is its
number, so the versions of a row are written by one connection, one at a
time: each write is UPDATE bench_stale SET v = v + 1 WHERE id = ID RETURNING v
(autocommit), and its ack time is taken after the reply's ReadyForQuery.
Every reader sends SELECT v FROM bench_stale WHERE id = ID (simple protocol,
ID random) again and again, the time taken before the first byte is sent.
Times are CLOCK_MONOTONIC (time.monotonic(): one clock for every process of
the machine), so each interval contains the real event.

Then the check: a read that returned version v of a row is stale if version
v + 1 was acknowledged before the read began; its staleness is the read's
start minus that ack. (A read may show a version whose ack came later: the
commit was under way; that is not stale.) A read older than what the rows
held at the start (another run's entries) or newer than every write sent
is an error.

Prints "key value" lines: reads, reads_per_s, writes, writes_per_s,
origin_writes, agent_writes, stale_0 (staleness > 0), stale_1, stale_2,
stale_10 (> 1, 2, 10 ms), stale_p99_ms (the 99th percentile of the stale
reads' staleness, 0 if none), stale_max_ms, errors. Exits 1 if a worker
failed.
"""
import array
import multiprocessing
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inval_probe import Conn  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name, default))


def wait_until(t):
    now = time.monotonic()
    if now < t:
        time.sleep(t - now)


def writer(args, db, port, rank, nwriters, ids, rate, start, end, out):
    """paced UPDATEs of the rows this writer owns: (id, v, ack) triples"""
    host, user, password = args
    conn = Conn(host, port, user, db, password)
    mine = [i for i in ids if (i - 1) % nwriters == rank]
    gap = 1.0 / rate
    rec = array.array("d")
    wait_until(start)
    due = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now < due:
            time.sleep(due - now)
        due += gap
        i = random.choice(mine)
        v = conn.query("UPDATE bench_stale SET v = v + 1 WHERE id = %d RETURNING v" % i)
        rec.extend((i, float(v), time.monotonic()))
    out.put(("w", rank, rec.tobytes()))


def reader(args, db, port, rank, nrows, start, end, out):
    """SELECTs of random rows as fast as they come: (id, v, start) triples"""
    host, user, password = args
    conn = Conn(host, port, user, db, password)
    rec = array.array("d")
    rnd = random.Random(rank)
    queries = ["SELECT v FROM bench_stale WHERE id = %d" % i for i in range(1, nrows + 1)]
    wait_until(start)
    while True:
        i = rnd.randrange(nrows)
        t = time.monotonic()
        if t >= end:
            break
        v = conn.query(queries[i])
        rec.extend((i + 1, float(v), t))
    out.put(("r", rank, rec.tobytes()))


def triples(raw):
    a = array.array("d")
    a.frombytes(raw)
    return [(int(a[k]), int(a[k + 1]), a[k + 2]) for k in range(0, len(a), 3)]


def check(base, writes, reads):
    """staleness (s) of every stale read, and the count of impossible reads"""
    acks = {}                                   # id -> {v: ack time}
    for i, v, t in writes:
        acks.setdefault(i, {})[v] = t
    top = {i: max(vs) for i, vs in acks.items()}
    stale, errors = [], 0
    for i, v, t in reads:
        if v < base[i] or v > top.get(i, base[i]):
            errors += 1
            continue
        ack = acks.get(i, {}).get(v + 1)
        if ack is not None and ack < t:
            stale.append(t - ack)
    return stale, errors


def dump(path, writes, reads):
    """STALE_DUMP=FILE: every stale read, "read_start ack staleness" in
    wall-clock seconds (time.time()'s), to set beside the agent's own
    timestamps"""
    off = time.time() - time.monotonic()
    acks = {(i, v): t for i, v, t in writes}
    with open(path, "w") as f:
        for i, v, t in reads:
            ack = acks.get((i, v + 1))
            if ack is not None and ack < t:
                f.write("%.6f %.6f %.6f\n" % (t + off, ack + off, t - ack))


def main():
    if len(sys.argv) != 8:
        sys.stderr.write(__doc__)
        return 2
    host, oport, aport, user, odb, adb, secs = sys.argv[1:]
    args = (host, user, os.environ.get("PGPASSWORD", ""))
    nrows = env_int("STALE_ROWS", 100)
    nreaders = env_int("STALE_READERS", 6)
    now_origin = env_int("STALE_ORIGIN_WRITERS", 2)
    now_agent = env_int("STALE_AGENT_WRITERS", 2)
    rate = float(os.environ.get("STALE_WRITE_RATE", 500))
    nwriters = now_origin + now_agent
    ids = list(range(1, nrows + 1))

    origin = Conn(host, int(oport), user, odb, args[2])
    base = {}
    origin.send("SELECT string_agg(id || ':' || v, ',') FROM bench_stale")
    for pair in origin.result().split(","):
        i, v = pair.split(":")
        base[int(i)] = int(v)

    out = multiprocessing.Queue()
    start = time.monotonic() + 2.0              # every worker connected by then
    end = start + float(secs)
    procs = []
    for rank in range(nwriters):
        on_origin = rank < now_origin
        procs.append(multiprocessing.Process(target=writer, args=(
            args, odb if on_origin else adb, int(oport if on_origin else aport),
            rank, nwriters, ids, rate / nwriters, start, end, out)))
    for rank in range(nreaders):
        procs.append(multiprocessing.Process(target=reader, args=(
            args, adb, int(aport), rank, nrows, start, end, out)))
    for p in procs:
        p.start()
    got = []
    for _ in procs:
        try:
            got.append(out.get(timeout=float(secs) + 120))
        except Exception:
            break
    failed = 0
    for p in procs:
        p.join(timeout=10)
        failed += p.exitcode != 0
    writes, reads, wcount = [], [], [0, 0]
    for kind, rank, raw in got:
        t = triples(raw)
        if kind == "w":
            writes.extend(t)
            wcount[0 if rank < now_origin else 1] += len(t)
        else:
            reads.extend(t)
    writes.sort(key=lambda w: w[2])
    stale, errors = check(base, writes, reads)
    if os.environ.get("STALE_DUMP"):
        dump(os.environ["STALE_DUMP"], writes, reads)
    stale.sort()
    dur = float(secs)
    p99 = stale[min(len(stale) - 1, int(len(stale) * 0.99))] if stale else 0.0
    lines = [
        ("reads", len(reads)),
        ("reads_per_s", "%.0f" % (len(reads) / dur)),
        ("writes", len(writes)),
        ("writes_per_s", "%.0f" % (len(writes) / dur)),
        ("origin_writes", wcount[0]),
        ("agent_writes", wcount[1]),
        ("stale_0", len(stale)),
        ("stale_1", sum(1 for s in stale if s > 0.001)),
        ("stale_2", sum(1 for s in stale if s > 0.002)),
        ("stale_10", sum(1 for s in stale if s > 0.010)),
        ("stale_p99_ms", "%.3f" % (p99 * 1000)),
        ("stale_max_ms", "%.3f" % (stale[-1] * 1000 if stale else 0.0)),
        ("errors", errors),
    ]
    for k, v in lines:
        print("%s %s" % (k, v), flush=True)
    if failed or len(got) != len(procs):
        sys.stderr.write("%d of %d workers failed\n" % (max(failed, len(procs) - len(got)), len(procs)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
