"""A WSGI app for the `unroot run` examples: it says who serves it.

    sudo unroot run -l 127.0.0.1:80 --user nobody -- \
        python3 -m gunicorn --chdir examples/run wsgi_app:app

gunicorn finds the socket itself (it reads LISTEN_FDS/LISTEN_PID); Twisted serves the same app
with ``twist web --listen systemd:domain=INET:index=0 --wsgi wsgi_app.app``.
"""

import os


def app(environ, start_response):
    body = f"hello from {environ.get('SERVER_SOFTWARE', 'wsgi')} as uid {os.getuid()}\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]
