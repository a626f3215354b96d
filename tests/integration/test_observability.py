"""Observability: /metrics in Prometheus format (requests by route template, jobs by name and
outcome, queue depth, outbox backlog, WeChat errors by code), the request id carried into the
jobs a request enqueues, JSON logs, and the worker's health check."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from typing import Any

from aiohttp.test_utils import TestClient
from arq.connections import RedisSettings
from arq.worker import Worker
from prometheus_client.parser import text_string_to_metric_families

from server.keys import ARQ
from services import logs, requestctx
from services.settings import Settings
from tasks.observe import observed
from tasks.worker import WorkerSettings, check, health_check_key
from tests.integration.test_notices import send
from tests.support import City, bearer, run_workers, staff_login


async def _scrape(client: TestClient[Any, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await r.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_by_route_jobs_by_outcome_and_the_backlog(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    staff = await staff_login(client)
    before = await _scrape(client)
    sent = await send(client, staff, title="度量")
    for _ in range(3):
        assert (await client.get(f"/api/v1/notices/{sent['id']}/stats", headers=bearer(staff))).status == 200
    assert (await client.get("/api/v1/notices/999999/stats", headers=bearer(staff))).status == 404
    mid = await _scrape(client)
    route = "/api/v1/notices/{notice_id}/stats"
    assert _value(mid, "zonehub_http_requests_total", method="GET", route=route, status="200") - \
        _value(before, "zonehub_http_requests_total", method="GET", route=route, status="200") == 3
    assert _value(mid, "zonehub_http_requests_total", method="GET", route=route, status="404") - \
        _value(before, "zonehub_http_requests_total", method="GET", route=route, status="404") == 1
    assert _value(mid, "zonehub_http_request_duration_seconds_count", method="GET", route=route) >= 4
    assert _value(mid, "zonehub_outbox_backlog", step="plan") == 1      # queued, no worker yet
    assert _value(mid, "zonehub_queue_depth") >= 1
    assert _value(mid, "zonehub_dependency_up", dependency="redis") == 1

    await run_workers(settings)
    after = await _scrape(client)
    assert _value(after, "zonehub_outbox_backlog", step="plan") == 0
    assert _value(after, "zonehub_queue_depth") == 0
    assert _value(after, "zonehub_jobs_total", job="plan_notice", outcome="ok") - \
        _value(before, "zonehub_jobs_total", job="plan_notice", outcome="ok") == 1
    assert _value(after, "zonehub_jobs_total", job="deliver_notice_batch", outcome="ok") > \
        _value(before, "zonehub_jobs_total", job="deliver_notice_batch", outcome="ok")


async def test_wechat_errors_are_counted_by_code(client: TestClient[Any, Any], city: City) -> None:
    labels = {"api": "code_to_session", "errcode": "40029"}
    before = _value(await _scrape(client), "zonehub_wechat_errors_total", **labels)
    for _ in range(2):  # the fake answers 40029 (invalid code) to a code not of the form test-<openid>
        r = await client.post("/api/v1/auth/wechat", json={"code": "bogus-code"})
        assert r.status >= 400
    assert _value(await _scrape(client), "zonehub_wechat_errors_total", **labels) - before == 2


async def test_a_request_id_follows_the_notice_into_its_jobs(client: TestClient[Any, Any], city: City,
                                                             settings: Settings) -> None:
    staff = await staff_login(client)
    r = await client.post("/api/v1/notices", headers={**bearer(staff), "X-Request-ID": "rid-follow-1"},
                          json={"title": "追踪", "body": "", "audience": {"zone_ids": [city.zones[0].id]}})
    assert r.status == 202 and r.headers["X-Request-ID"] == "rid-follow-1"
    queued = await client.app[ARQ].queued_jobs()
    assert [(j.function, j.kwargs) for j in queued] == [("plan_notice", {"request_id": "rid-follow-1"})]
    await run_workers(settings)
    # each step enqueued the next with the same id: plan -> deliver -> push
    done = await client.app[ARQ].all_job_results()
    assert {j.function for j in done} >= {"plan_notice", "deliver_notice_batch", "push_notice_batch"}
    assert {j.kwargs.get("request_id") for j in done if j.function.endswith(("_notice", "_batch"))} == {
        "rid-follow-1"}

    seen: list[str | None] = []

    async def logs_its_request(ctx: dict[str, Any], notice_id: int) -> None:
        seen.append(requestctx.request_id.get())

    await observed(logs_its_request)({"job_id": "j1"}, 1, request_id="rid-follow-1")
    assert seen == ["rid-follow-1"] and requestctx.request_id.get() is None


def test_json_logs_carry_the_request_id_and_the_job() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("zonehub.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    rid, job = requestctx.request_id.set("rid-json"), requestctx.job.set("plan_notice:abc")
    try:
        logger.info("通知 %s", 7)
    finally:
        requestctx.request_id.reset(rid)
        requestctx.job.reset(job)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert (line["message"], line["request_id"], line["job"], line["level"]) == (
        "通知 7", "rid-json", "plan_notice:abc", "INFO")


async def test_worker_check_answers_whether_this_worker_beats(settings: Settings) -> None:
    settings = settings.model_copy(update={"worker_name": "check-test"})
    env = {**os.environ, "ZONEHUB_REDIS_URL": settings.redis_url or "", "ZONEHUB_WORKER_NAME": "check-test",
           "ZONEHUB_SECRET_KEY": settings.secret_key.get_secret_value()}

    def cli() -> int:
        return subprocess.run([sys.executable, "-m", "server.cli", "worker", "--check"], env=env,
                              capture_output=True, timeout=60).returncode

    assert await check(settings) == 1 and cli() == 1       # no worker has beaten yet
    worker = Worker(functions=WorkerSettings.functions, redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=WorkerSettings.queue_name, burst=True, handle_signals=False,
        health_check_key=health_check_key(settings), health_check_interval=30, ctx={"settings": settings},
        on_startup=WorkerSettings.on_startup, on_shutdown=WorkerSettings.on_shutdown)
    try:
        await worker.main()                                 # burst: ran, beat once, returned
        assert await check(settings) == 0 and cli() == 0
        other = settings.model_copy(update={"worker_name": "another"})
        assert await check(other) == 1                      # its heartbeat is its own
    finally:
        await worker.close()
    assert await check(settings) == 1                       # a stopped worker is not healthy
