"""The comparison servers of benchmarks/http.py, each answering GET / with a fixed body.

``python benchmarks/http/apps.py aiohttp PORT`` runs aiohttp's web server; uvicorn loads
``apps:asgi`` itself (``--app-dir benchmarks/http``). Not imported by tests.
"""

from __future__ import annotations

import sys

BODY = b"Hello, world!\n"
_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"14")]


async def asgi(scope, receive, send):  # the smallest ASGI app: what uvicorn adds is uvicorn
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def run_aiohttp(port: int) -> None:
    from aiohttp import web

    async def hello(request):
        return web.Response(body=BODY, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    if sys.argv[1] == "aiohttp":
        run_aiohttp(int(sys.argv[2]))
