"""A plain asyncio HTTP server that takes its sockets from `unroot run` (or systemd).

    sudo unroot run -l web=:80 -l web=[::]:8080,v6only=1 --user nobody -- \
        python3 examples/run/asyncio_server.py

Every socket named ``web`` (or unnamed) is served; readiness goes to NOTIFY_SOCKET when one
is set (``unroot run --supervise --ready notify``, systemd Type=notify).
"""

import asyncio
import os

from unroot.activation import listeners, notify_ready


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # the request line and headers; this server answers every request alike
    body = f"hello from asyncio as uid {os.getuid()}\n".encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    writer.write(head.encode() + b"Content-Type: text/plain\r\n\r\n" + body)
    await writer.drain()
    writer.close()


async def main() -> None:
    found = listeners()
    socks = found.get("web", []) + found.get("unknown", [])
    if not socks:
        raise SystemExit("asyncio_server: no sockets passed (run it under `unroot run -l ...`)")
    servers = [await asyncio.start_server(handle, sock=sock) for sock in socks]
    notify_ready()
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main())
