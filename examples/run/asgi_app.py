"""An ASGI app for the `unroot run` examples (no framework): it says who serves it.

    sudo unroot run -l 127.0.0.1:80 --user nobody -- \
        python3 -m uvicorn --fd {fd} --app-dir examples/run asgi_app:app
    sudo unroot run -l 127.0.0.1:80 --user nobody -- \
        python3 -m hypercorn --bind fd://{fd} asgi_app:app      # from examples/run
"""

import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = f"hello from asgi as uid {os.getuid()}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
