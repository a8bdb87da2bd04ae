"""kube-proxy's chain names and the text layout of ``iptables-save``.

Real components: kube-proxy's chain naming (``pkg/proxy/iptables/proxier.go``:
``portProtoHash``, ``servicePortEndpointChainName``, K19), its ``statistic`` probabilities as the
kernel stores and ``iptables-save`` prints them (``libxt_statistic``), and ``iptables-save``'s
table layout: built-in chains with their policy, then user chains sorted by name, then every
chain's rules chain by chain (measured with iptables 1.8.9, nf_tables backend).
"""

from __future__ import annotations

import base64
import hashlib
import math

from sim.config.cluster import SERVICE_PORT_NAME

__all__ = ["Table", "chain_hash", "comment", "endpoint_chain", "probability", "service_chains"]

_PROTOCOL = "tcp"


def chain_hash(text: str) -> str:
    """kube-proxy's 16-character chain suffix: ``base32(sha256(text))[:16]`` (K19)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def service_chains(service_port_name: str = SERVICE_PORT_NAME) -> dict[str, str]:
    """The Service's chains by role: ``svc`` (cluster), ``svl`` (local), ``ext``, ``fw`` (K19)."""
    suffix = chain_hash(service_port_name + _PROTOCOL)
    return {role: f"KUBE-{role.upper()}-{suffix}" for role in ("svc", "svl", "ext", "fw")}


def endpoint_chain(address: str, service_port_name: str = SERVICE_PORT_NAME) -> str:
    """The ``KUBE-SEP-`` chain of endpoint ``ip:port`` (K19)."""
    return "KUBE-SEP-" + chain_hash(service_port_name + _PROTOCOL + address)


def probability(n: int) -> str:
    # kube-proxy writes 1/n with 10 decimals; xt_statistic stores round(p * 2^31) and
    # iptables-save prints that back with 11 decimals (libxt_statistic.c).
    written = float(f"{1.0 / n:0.10f}")
    stored = math.floor(written * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


def comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


class Table:
    """One table in iptables-save order: built-in chains, then user chains by name.

    :meth:`add` appends a rule (with an optional comment line above it, e.g. its fact IDs);
    :meth:`render` returns the table's lines from ``*name`` to ``COMMIT``.
    """

    def __init__(self, name: str, builtins: tuple[str, ...]) -> None:
        self.name = name
        self.builtins = builtins
        self.rules: dict[str, list[tuple[str, str]]] = {b: [] for b in builtins}

    def declare(self, *chains: str) -> None:
        for chain in chains:
            self.rules.setdefault(chain, [])

    def add(self, chain: str, rule: str, note: str = "") -> None:
        self.declare(chain)
        self.rules[chain].append((note, f"-A {chain} {rule}"))

    def render(self) -> list[str]:
        users = sorted(c for c in self.rules if c not in self.builtins)
        lines = [f"*{self.name}"]
        lines += [f":{b} ACCEPT [0:0]" for b in self.builtins]
        lines += [f":{c} - [0:0]" for c in users]
        for chain in (*self.builtins, *users):
            for note, rule in self.rules[chain]:
                lines += [f"# {n}" for n in note.splitlines()]
                lines.append(rule)
        lines.append("COMMIT")
        return lines
