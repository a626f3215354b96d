"""Benchmark harness: `scripts/bench` starts the stack, measures each figure beside a bare
aiohttp baseline in the same run, and prints the ratios (see bench/run.py)."""
