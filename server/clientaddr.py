"""The client's address behind reverse proxies.

X-Forwarded-For is believed only when the peer that connected is a trusted proxy, and then only
up to the rightmost hop that is not itself a trusted proxy: every hop left of it was written by
whoever sent the request and may be made up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:5150
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], networks: Sequence[Network]) -> str:
    """`peer` is the address that connected; `forwarded_for` every X-Forwarded-For header in order."""
    current = _address(peer or "")
    if current is None:
        return peer or "unknown"
    if not networks or not _trusted(current, networks):
        return str(current)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage left of a trusted hop: that hop is the last we know
            break
        current = address
        if not _trusted(address, networks):
            break
    return str(current)
