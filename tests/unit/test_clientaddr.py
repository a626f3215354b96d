"""The client address behind proxies: X-Forwarded-For believed only from trusted peers."""

from __future__ import annotations

import ipaddress

import pytest

from server.clientaddr import client_address
from services.settings import ConfigError, load_settings

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"
    assert client_address("127.0.0.1", ["1.2.3.4"], ()) == "127.0.0.1"  # no proxies configured


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    # the client made up "6.6.6.6"; nginx (10.0.0.5) appended the address it saw
    assert client_address("10.0.0.5", ["6.6.6.6, 198.51.100.7"], PROXIES) == "198.51.100.7"
    # two proxies: the load balancer 10.0.0.2 then nginx 10.0.0.5
    assert client_address("10.0.0.5", ["6.6.6.6, 198.51.100.7, 10.0.0.2"], PROXIES) == "198.51.100.7"
    # several headers are one list
    assert client_address("10.0.0.5", ["6.6.6.6", "198.51.100.7"], PROXIES) == "198.51.100.7"


def test_garbage_and_only_trusted_hops() -> None:
    assert client_address("10.0.0.5", ["not-an-ip, 10.0.0.2"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.5", [], PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("10.0.0.5", ["198.51.100.7:5150"], PROXIES) == "198.51.100.7"


def test_a_bad_cidr_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="ZONEHUB_TRUSTED_PROXIES"):
        load_settings(secret_key="x" * 40, trusted_proxies="10.0.0.0/8,nonsense", _env_file=None)
    ok = load_settings(secret_key="x" * 40, trusted_proxies=" 10.0.0.0/8 , ::1 ", _env_file=None)
    assert [str(n) for n in ok.trusted_networks] == ["10.0.0.0/8", "::1/128"]
