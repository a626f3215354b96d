"""The floor every figure is compared with: a bare aiohttp app, one GET handler, a small JSON
object. Served exactly like `zonehub serve` (own process, uvloop if importable, no access log):

    python -m bench.baseline --port 8090
"""

from __future__ import annotations

import argparse

from aiohttp import web

from bench.figure import Context, Figure, Result
from bench.loadgen import Request

LABEL = "bare aiohttp JSON handler"
PATH = "/hello"


async def hello(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "baseline"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get(PATH, hello)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop  # as `zonehub serve` does

        uvloop.install()
    except ImportError:
        pass
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


async def run(ctx: Context) -> list[Result]:
    """Measure the bare handler with the same load as every figure."""
    return [await ctx.measure(LABEL, [Request.get(ctx.stack.baseline_url)])]


FIGURE = Figure("baseline", run)

if __name__ == "__main__":
    main()
