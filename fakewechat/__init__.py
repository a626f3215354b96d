"""Local fake of the WeChat server APIs (real wire format) for tests and demos."""

from fakewechat.app import FAKE_KEY, FakeWeChat, create_app, run

__all__ = ["FAKE_KEY", "FakeWeChat", "create_app", "run"]
