"""Local fake of the WeChat server APIs (real wire format) for tests and demos."""

from fakewechat.app import FAKE_KEY, FakeWeChat, create_app, run
from fakewechat.pay import PAY_KEY, FakePay
from fakewechat.paykeys import PayKeys

__all__ = ["FAKE_KEY", "PAY_KEY", "FakePay", "FakeWeChat", "PayKeys", "create_app", "run"]
