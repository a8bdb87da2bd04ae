"""The asyncio server and HAProxy configuration of docs/howto/asyncio-server.md, as written.

Both the unit tests (tests/test_proxy_protocol_asyncio.py) and the interoperability test with a
real HAProxy (tests/test_interop_haproxy.py) run the code blocks of the how-to page itself, so
the page cannot drift from what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HOWTO = Path(__file__).resolve().parents[1] / "docs" / "howto" / "asyncio-server.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", HOWTO.read_text(), flags=re.DOTALL)


def server_namespace() -> dict[str, Any]:
    """Execute the how-to's server (the Python block that defines ``handle``)."""
    (code,) = [block for block in _blocks("python") if "async def handle(" in block]
    namespace: dict[str, Any] = {"__name__": "client_ip_server"}
    exec(compile(code, str(HOWTO), "exec"), namespace)
    return namespace


def haproxy_config() -> str:
    """The how-to's haproxy.cfg (the text block with ``send-proxy-v2``)."""
    (config,) = [block for block in _blocks("text") if "send-proxy-v2" in block]
    return config
