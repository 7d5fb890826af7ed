"""A fast webhook receiver for ``bench webhooks`` (asyncio, one process): ``python -m bench.receiver PORT``.

``POST /ok/...`` answers 200 at once; ``POST /slow/...`` answers 200 after ``--slow-seconds`` (default 5).
``GET /stats`` returns the number of requests per first path segment. Keep-alive is supported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter

counts: Counter = Counter()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slow_seconds: float) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                break
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            length = 0
            close = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                await reader.readexactly(length)
            segment = path.strip("/").split("/", 1)[0]
            if method == "GET" and segment == "stats":
                body = json.dumps(counts).encode()
            else:
                counts[segment] += 1
                if segment == "slow":
                    await asyncio.sleep(slow_seconds)
                body = b'{"ok":true}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + (b"\r\nConnection: close" if close else b"")
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, slow_seconds: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, slow_seconds), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.slow_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
