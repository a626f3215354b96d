"""The aiohttp HTTP layer: routes parse, call one service, serialise."""
