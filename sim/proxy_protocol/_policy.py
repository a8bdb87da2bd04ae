"""Who may send a PROXY header: a policy per peer address (sans-I/O, no socket, no asyncio).

A PROXY header is a claim, not a proof: anybody who can write to the port can write
``PROXY TCP4 <any address> ...``. So a receiver decides, per connecting peer, what a header from
it means, as pires/go-proxyproto does (``Policy``, ``PolicyFromRanges``,
``TrustProxyHeaderFrom`` in its ``policy.go``) and as HAProxy does with
``tcp-request connection expect-proxy layer4 if { src -f proxies.lst }``:

=========== ==================================================================================
``REQUIRE`` the peer must send a header; it is used (go-proxyproto REQUIRE, HAProxy
            ``accept-proxy``). No header: the connection is refused.
``USE``     a header is used if present; without one the connection is served as is
            (go-proxyproto USE). The receiver has to look at the first bytes to tell, which the
            spec forbids for peers you do not trust (§5, FACTS H8): only for trusted ranges.
``IGNORE``  a header, if present, is read, checked and dropped; the socket's addresses are
            used (go-proxyproto IGNORE).
``REJECT``  the peer may not send a header: one that arrives refuses the connection;
            without one it is served as is (go-proxyproto REJECT).
``SKIP``    nothing is read: the connection is served as is, and a header it carries stays
            part of the payload (go-proxyproto SKIP; HAProxy for a source that
            ``expect-proxy`` does not match).
``DENY``    the peer may not connect at all; refused before anything is read (a go-proxyproto
            policy function returning an error, as ``TrustProxyHeaderFrom`` does for
            untrusted peers; HAProxy ``tcp-request connection reject``).
=========== ==================================================================================

Only ``REQUIRE`` and ``USE`` ever honour a header: give them to the ranges your proxies
connect from, and nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: What a server knows about the peer: ``writer.get_extra_info("peername")`` (a ``(host, port,
#: ...)`` tuple), an address string or object, or ``None`` / ``""`` for a UNIX socket.
PeerLike: TypeAlias = tuple[object, ...] | str | Address | None


class Policy(Enum):
    """What a header from a peer means (see the module docstring)."""

    REQUIRE = "require"
    USE = "use"
    IGNORE = "ignore"
    REJECT = "reject"
    SKIP = "skip"
    DENY = "deny"

    @property
    def honours_header(self) -> bool:
        """Whether a header from a peer with this policy is believed (REQUIRE, USE)."""
        return self in (Policy.REQUIRE, Policy.USE)


def _networks(ranges: Iterable[Network | Address | str], what: str) -> tuple[Network, ...]:
    if isinstance(ranges, str | bytes):
        raise TypeError(f"{what}: expected a list of networks, got the single string {ranges!r}")
    nets: list[Network] = []
    for item in ranges:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            nets.append(item)
        elif isinstance(item, ipaddress.IPv4Address | ipaddress.IPv6Address):
            nets.append(ipaddress.ip_network(item))
        elif isinstance(item, str):
            try:
                nets.append(ipaddress.ip_network(item))
            except ValueError as exc:
                raise ValueError(f"{what}: {item!r} is not a network: {exc}") from None
        else:
            raise TypeError(f"{what}: expected networks, addresses or strings, got {item!r}")
    return tuple(nets)


def peer_address(peer: PeerLike) -> Address | None:
    """The IP address of ``peer``, or ``None`` when it is not an IP peer (UNIX socket, None).

    A dual-stack listener reports IPv4 clients as ``::ffff:a.b.c.d``: those are returned as
    the IPv4 address, so IPv4 ranges match them.
    """
    addr: Address | None
    if isinstance(peer, ipaddress.IPv4Address | ipaddress.IPv6Address):
        addr = peer
    else:
        host = peer[0] if isinstance(peer, tuple) and peer else peer
        if not isinstance(host, str):
            return None
        try:
            addr = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return None  # a UNIX socket path or '' is never in an IP network
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True, init=False)
class PeerPolicy:
    """A :class:`Policy` per peer address: the first rule whose networks hold the peer wins.

    >>> policy = PeerPolicy(
    ...     [(["10.0.0.5/32", "10.0.0.6/32"], Policy.REQUIRE),   # the proxies
    ...      (["10.0.0.0/8"], Policy.REJECT)],                    # direct in-cluster callers
    ...     default=Policy.DENY)                                  # anybody else
    >>> policy.for_peer(("10.0.0.5", 40000)), policy.for_peer("10.9.9.9")
    (<Policy.REQUIRE: 'require'>, <Policy.REJECT: 'reject'>)
    >>> policy.for_peer("203.0.113.7"), policy.for_peer(None)
    (<Policy.DENY: 'deny'>, <Policy.DENY: 'deny'>)

    Args:
        rules: ``(networks, policy)`` pairs, in order; networks are ``ipaddress`` networks or
            addresses, or strings such as ``"10.0.0.0/8"`` or ``"10.0.0.5"``.
        default: the policy of a peer that no rule matches, including a peer that is not an IP
            address (a UNIX socket): ``DENY`` unless you say otherwise.

    Raises:
        ValueError, TypeError: a network that does not parse, a policy that is not a
            :class:`Policy`.
    """

    rules: tuple[tuple[tuple[Network, ...], Policy], ...]
    default: Policy

    def __init__(
        self,
        rules: Iterable[tuple[Iterable[Network | Address | str], Policy]],
        *,
        default: Policy = Policy.DENY,
    ) -> None:
        checked: list[tuple[tuple[Network, ...], Policy]] = []
        for i, rule in enumerate(rules):
            try:
                ranges, policy = rule
            except (TypeError, ValueError):
                raise TypeError(f"rules[{i}]: expected a (networks, Policy) pair") from None
            if not isinstance(policy, Policy):
                raise TypeError(f"rules[{i}]: {policy!r} is not a Policy")
            checked.append((_networks(ranges, f"rules[{i}]"), policy))
        if not isinstance(default, Policy):
            raise TypeError(f"default: {default!r} is not a Policy")
        object.__setattr__(self, "rules", tuple(checked))
        object.__setattr__(self, "default", default)

    def for_peer(self, peer: PeerLike) -> Policy:
        """The policy for ``peer`` (a peername tuple, an address or its text, or ``None``)."""
        addr = peer_address(peer)
        if addr is not None:
            for networks, policy in self.rules:
                for net in networks:
                    if addr.version == net.version and addr in net:
                        return policy
        return self.default


def policy_from_ranges(
    ranges: Iterable[Network | Address | str], matched: Policy, unmatched: Policy = Policy.DENY
) -> PeerPolicy:
    """``matched`` for peers in ``ranges``, ``unmatched`` for all others (go-proxyproto's
    ``PolicyFromRanges``). ``policy_from_ranges(proxies, Policy.REQUIRE, Policy.SKIP)`` is
    HAProxy's ``expect-proxy layer4 if { src -f proxies.lst }``."""
    return PeerPolicy([(ranges, matched)], default=unmatched)


def trust_proxy_header_from(ranges: Iterable[Network | Address | str]) -> PeerPolicy:
    """The strict setup (go-proxyproto's ``TrustProxyHeaderFromRanges``): peers in ``ranges``
    must send a header, every other peer is refused before anything is read."""
    return PeerPolicy([(ranges, Policy.REQUIRE)], default=Policy.DENY)
