#!/usr/bin/env python3
"""bench/delay_relay.py: a TCP relay that adds a fixed delay, for bench/run's
"far" scenario (an origin far away, on loopback: this kernel has no netem).

Listens on 127.0.0.1:LISTEN, connects each accepted connection to
127.0.0.1:TARGET and forwards bytes both ways; each chunk is delivered
DELAY_MS/2 after it was read (a one-way delay: a round trip through the relay
gains DELAY_MS). A new connection also pays one round trip before its first
bytes reach the origin, as TCP's handshake would make the client wait before
it can send (on loopback the client's connect() returns at once). Chunks are queued per direction with their due time
(read time + DELAY_MS/2) and written in order, never reordered; a half-close
(EOF) is forwarded once the data before it is delivered, and a connection is
closed when both directions are done (or at once on an error or a reset).
A direction stops reading while more than --max-queued bytes (4 MiB) wait in
it. Prints "listening PORT" on stdout when ready (with --listen 0, the port
the system chose). Stdlib only (asyncio). SIGTERM/SIGINT stop it.
"""
import argparse
import asyncio
import signal
import sys


class Direction:
    """One direction of one connection: reader -> queue -> writer."""

    def __init__(self, reader, writer, delay, max_queued, not_before=0.0):
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.max_queued = max_queued
        self.not_before = not_before    # loop.time() before which nothing leaves
        self.queue = asyncio.Queue()    # (due, bytes or None for EOF)
        self.queued = 0                 # bytes in the queue
        self.room = asyncio.Event()     # set when queued <= max_queued
        self.room.set()

    async def read(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.room.wait()
                data = await self.reader.read(65536)
                due = max(loop.time(), self.not_before) + self.delay
                if not data:
                    break
                self.queued += len(data)
                if self.queued > self.max_queued:
                    self.room.clear()
                self.queue.put_nowait((due, data))
        finally:
            # EOF, or an error: the writer ends after what was read
            self.queue.put_nowait((loop.time() + self.delay, None))

    async def write(self):
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self.queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            self.writer.write(data)
            await self.writer.drain()
            self.queued -= len(data)
            if self.queued <= self.max_queued:
                self.room.set()


async def relay(client_reader, client_writer, args):
    try:
        origin_reader, origin_writer = await asyncio.open_connection("127.0.0.1", args.target)
    except OSError as e:
        print(f"connect to 127.0.0.1:{args.target}: {e}", file=sys.stderr)
        client_writer.close()
        return
    delay = args.delay_ms / 2000.0
    # the handshake's round trip: the client could send nothing before it
    up = Direction(client_reader, origin_writer, delay, args.max_queued,
                   not_before=asyncio.get_running_loop().time() + 2 * delay)
    down = Direction(origin_reader, client_writer, delay, args.max_queued)
    tasks = [asyncio.create_task(c) for c in (up.read(), up.write(), down.read(), down.write())]
    try:
        # the writers end after EOF; an error anywhere ends the connection
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.exception() for t in done if not t.cancelled()):
                break
            if tasks[1].done() and tasks[3].done():
                break
    except asyncio.CancelledError:
        pass    # the relay is stopping (SIGTERM): close quietly
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in (client_writer, origin_writer):
            w.close()


async def main():
    p = argparse.ArgumentParser(
        description="TCP relay 127.0.0.1:LISTEN -> 127.0.0.1:TARGET adding DELAY_MS "
                    "of round trip (DELAY_MS/2 each way), order preserved per direction. "
                    "Prints 'listening PORT' when ready.")
    p.add_argument("--listen", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--target", type=int, required=True, help="port to forward to, on 127.0.0.1")
    p.add_argument("--delay-ms", type=float, required=True,
                   help="round-trip delay added, ms (each direction gets half)")
    p.add_argument("--max-queued", type=int, default=4 << 20,
                   help="bytes queued per direction above which reading pauses (default 4 MiB)")
    args = p.parse_args()

    server = await asyncio.start_server(lambda r, w: relay(r, w, args), "127.0.0.1", args.listen,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
