"""The worker's schedules read in Shanghai time, whatever zone the host runs in."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from arq.connections import RedisSettings
from arq.worker import Worker

from tasks import worker


def test_the_daily_rotation_plan_runs_at_03_17_in_shanghai_on_a_utc_host() -> None:
    kwargs = {k: v for k, v in vars(worker.WorkerSettings).items() if not k.startswith("_")}
    w = Worker(**kwargs, redis_settings=RedisSettings(), burst=True)  # no connection until run
    [job] = [copy.copy(j) for j in w.cron_jobs if j.name == "cron:plan_rotations"]
    job.calculate_next(datetime(2026, 12, 3, 12, 0, tzinfo=UTC).astimezone(w.timezone))
    assert job.next_run is not None
    # 03:17 in Shanghai on 4 December is 19:17 UTC on the 3rd (not 03:17 UTC on the 4th).
    assert job.next_run.astimezone(UTC).replace(microsecond=0) == datetime(2026, 12, 3, 19, 17, tzinfo=UTC)
