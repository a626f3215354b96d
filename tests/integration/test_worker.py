"""The arq worker really runs jobs on Redis: the WeChat token refresh, shared by all processes."""

from __future__ import annotations

import redis as sync_redis
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from fakewechat import FakeWeChat
from services.settings import Settings
from tasks.worker import WorkerSettings


def _worker(settings: Settings, redis_settings: RedisSettings) -> Worker:
    return Worker(functions=WorkerSettings.functions, on_startup=WorkerSettings.on_startup,
                  on_shutdown=WorkerSettings.on_shutdown, redis_settings=redis_settings,
                  queue_name=WorkerSettings.queue_name, burst=True, poll_delay=0.05,
                  ctx={"settings": settings}, handle_signals=False)


async def test_refresh_job_stores_one_token_for_everyone(settings: Settings,
                                                         fake_wechat: FakeWeChat) -> None:
    assert settings.redis_url
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    pool = await create_pool(redis_settings)
    try:
        # Two enqueues with the same job id: arq keeps one.
        first = await pool.enqueue_job("refresh_wechat_token", _job_id="refresh-1",
                                       _queue_name=WorkerSettings.queue_name)
        second = await pool.enqueue_job("refresh_wechat_token", _job_id="refresh-1",
                                        _queue_name=WorkerSettings.queue_name)
        assert first is not None and second is None
        worker = _worker(settings, redis_settings)
        await worker.main()
        await worker.close()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
        assert await first.result(timeout=5) is True       # no token yet: it fetched one
        assert fake_wechat.stable_token_calls == 1
        stored = sync_redis.Redis.from_url(settings.redis_url).get(
            f"zonehub:wechat:{settings.wechat_appid}_access_token")
        assert stored is not None

        # A fresh token is left alone by the next run.
        job = await pool.enqueue_job("refresh_wechat_token", _queue_name=WorkerSettings.queue_name)
        assert job is not None
        worker = _worker(settings, redis_settings)
        await worker.main()
        await worker.close()
        assert await job.result(timeout=5) is False
        assert fake_wechat.stable_token_calls == 1
    finally:
        await pool.aclose()
