"""A tiny round-robin TCP balancer, for trying several Tessera instances on one machine.

    .venv/bin/python bench/balancer.py --port 8080 --upstream 8001,8002

Each client connection goes to the next upstream port in turn and is piped both ways until
either side closes; an upstream that refuses the connection is skipped for that client. It
balances connections, not requests: a keep-alive client stays on one instance, as behind
most TCP load balancers. A stand-in for the real one (HAProxy, nginx, a cloud balancer),
not a production component.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class Balancer:
    def __init__(self, host: str, upstreams: list[int]) -> None:
        self.host = host
        self.upstreams = upstreams
        self.turn = itertools.cycle(range(len(upstreams)))

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The next upstream in turn that accepts, trying each once."""
        error: OSError | None = None
        for _ in self.upstreams:
            port = self.upstreams[next(self.turn)]
            try:
                return await asyncio.open_connection(self.host, port)
            except OSError as exc:
                error = exc
        raise error or OSError("no upstream")

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await self.connect()
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))


async def serve(port: int, upstreams: list[int], host: str = "127.0.0.1") -> None:
    balancer = Balancer(host, upstreams)
    server = await asyncio.start_server(balancer.handle, host, port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the port clients connect to")
    parser.add_argument("--upstream", required=True, help="comma-separated upstream ports")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.port, [int(p) for p in args.upstream.split(",")], args.host))


if __name__ == "__main__":
    main()
