"""The real tools that check what ``srcip-lab config`` writes: haproxy, iptables-restore, netns.

Same rule as tests/haproxy_harness.py: without the tool (or root, or network namespaces) a test
skips, except when the environment variable ``CI`` is set, where it fails: CI must run them.

Network namespaces: a test only ever works inside namespaces it creates itself, named with
:data:`NETNS_PREFIX` plus a random suffix, and deletes them in ``finally`` even after a failure.
Nothing here touches the root namespace's links, routes, addresses or firewall: every
``iptables-restore`` runs under ``ip netns exec <own namespace>``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from haproxy_harness import find_haproxy

NETNS_PREFIX = "srciptest-cfg-"
"""Every namespace these tests create starts with this."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the configuration checks must run: {reason}")
    pytest.skip(reason)


def require_haproxy_binary() -> str:
    """HAProxy's path (any version can run ``-c``); skip or fail without it."""
    path = find_haproxy()
    if path is None:
        _unavailable("haproxy is not installed (apt-get install haproxy)")
    assert path is not None
    return path


def _which(name: str) -> str | None:
    found = shutil.which(name)
    for folder in ("/usr/sbin", "/sbin"):
        if found is None and os.access(f"{folder}/{name}", os.X_OK):
            found = f"{folder}/{name}"
    return found


def require_netns() -> tuple[str, str]:
    """``(ip, iptables-restore)`` paths when root can create network namespaces here."""
    ip, restore = _which("ip"), _which("iptables-restore")
    if ip is None or restore is None:
        _unavailable("iproute2 and iptables are needed (apt-get install iproute2 iptables)")
    if os.geteuid() != 0:
        _unavailable("network namespaces need root")
    assert ip is not None and restore is not None
    probe = subprocess.run(
        [ip, "netns", "list"], capture_output=True, text=True, timeout=10, check=False
    )
    if probe.returncode != 0:
        _unavailable(f"`ip netns` does not work here: {probe.stderr.strip()}")
    return ip, restore


@contextlib.contextmanager
def netns(ip: str) -> Iterator[str]:
    """A fresh network namespace of our own, deleted on exit whatever happened."""
    name = NETNS_PREFIX + secrets.token_hex(4)
    created = subprocess.run(
        [ip, "netns", "add", name], capture_output=True, text=True, timeout=10, check=False
    )
    if created.returncode != 0:
        _unavailable(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], capture_output=True, timeout=10, check=False)


def in_netns(
    ip: str, name: str, *argv: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside namespace ``name`` (which must be one of ours)."""
    assert name.startswith(NETNS_PREFIX), name
    return subprocess.run(
        [ip, "netns", "exec", name, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
