"""What a user's ``haproxy.cfg`` means for the model: one frontend, its backend and servers.

Real component: HAProxy 2.x (``doc/configuration.txt``). From the sections
:mod:`sim.config.haproxy_reader` found, this picks the frontend (or ``listen``) that carries the
traffic and its ``default_backend``, and reads what :class:`~sim.HAProxyConfig` models: ``mode``
(HAProxy's default ``tcp``), ``option forwardfor`` (H7), the servers' ``send-proxy`` /
``send-proxy-v2`` / ``send-proxy-v2-ssl`` and ``proxy-v2-options`` (H1, H2), ``check``,
``inter``/``fall``/``rise``/``fastinter``/``downinter`` (also from ``default-server``, H5, H10),
``timeout connect``/``check`` (H10), ``option httpchk`` and a check ``port`` (H4, K10, K11).
``server-template`` counts as its number of servers (H11). Where the servers point is decided
later, against the Kubernetes files (:mod:`sim.config.infer`).

Settings that would change the answer but are not modelled are errors (``source ... usesrc``
transparent proxying, ``check-send-proxy``, servers that disagree on PROXY or checks); keywords
that do not matter are accepted; unknown ones are listed as ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sim.config.findings import ExplainError, Ignored, Where
from sim.config.haproxy_reader import Directive, Section

__all__ = ["HAProxySetup", "Server", "modelled_v2_options", "parse_time", "read_setup"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WITH_ARG = _words(
    "inter fastinter downinter fall rise port addr weight maxconn maxqueue minconn id "
    "cookie check-sni sni alpn proto resolvers init-addr resolve-prefer resolve-opts "
    "resolve-net ca-file crt crl-file ciphers ciphersuites observe on-error on-marked-down "
    "on-marked-up error-limit slowstart track namespace pool-max-conn pool-low-conn "
    "pool-purge-delay max-reuse proxy-v2-options redir agent-port agent-inter agent-addr "
    "agent-send check-proto check-alpn shard log-proto set-proxy-v2-tlv-fmt ws tcp-ut "
    "verify verifyhost ssl-min-ver ssl-max-ver hash-key check-pool-conn-name pool-conn-name "
    "curves sigalgs client-sigalgs npn source usesrc interface"
)
_FLAGS = _words(
    "check no-check backup no-backup disabled enabled send-proxy send-proxy-v2 "
    "send-proxy-v2-ssl send-proxy-v2-ssl-cn no-send-proxy no-send-proxy-v2 ssl no-ssl "
    "check-ssl no-check-ssl agent-check no-agent-check non-stick stick tfo no-tfo "
    "allow-0rtt no-verifyhost force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 "
    "force-tlsv13 no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 no-tls-tickets "
    "tls-tickets check-via-socks4 check-reuse-pool"
)
_MODELLED_V2_OPTIONS = ("crc32c", "unique-id", "authority", "ssl")
_GLOBAL_KEYWORDS = _words(
    "daemon master-worker log log-tag log-send-hostname user group uid gid chroot pidfile "
    "nbthread nbproc thread-groups cpu-map maxconn stats ca-base crt-base "
    "ssl-default-bind-ciphers ssl-default-bind-ciphersuites ssl-default-bind-options "
    "ssl-default-server-ciphers ssl-default-server-ciphersuites ssl-default-server-options "
    "ssl-dh-param-file ssl-server-verify spread-checks max-spread-checks hard-stop-after "
    "localpeer lua-load lua-prepend-path setenv presetenv resetenv unsetenv description "
    "node server-state-base server-state-file external-check insecure-fork-wanted "
    "insecure-setuid-wanted unix-bind expose-experimental-directives strict-limits ulimit-n "
    "quiet zero-warning h1-case-adjust default-path set-dumpable busy-polling noepoll "
    "nopoll maxsslconn maxconnrate maxsessrate maxsslrate ssl-engine ssl-mode-async "
    "numa-cpu-mapping profiling.tasks httpclient.resolvers.disabled"
)
_PROXY_KEYWORDS = _words(
    "mode log log-format log-format-sd error-log-format log-tag option no timeout retries "
    "retry-on maxconn fullconn backlog balance hash-type hash-balance-factor bind "
    "default_backend use_backend use-server server server-template default-server acl "
    "http-request http-response http-after-response tcp-request tcp-response errorfile "
    "errorfiles errorloc errorloc302 errorloc303 http-error stats cookie stick stick-table "
    "capture monitor-uri monitor unique-id-format unique-id-header compression filter "
    "http-reuse description id disabled enabled http-check tcp-check external-check "
    "redirect source email-alert force-persist ignore-persist persist rate-limit dispatch "
    "declare load-server-state-from-file server-state-file-name max-keep-alive-queue "
    "contimeout clitimeout srvtimeout grace persist http-send-name-header"
)
_USESRC = (
    "`source ... usesrc` (transparent proxying) changes the source address the cluster sees "
    "and is not modelled; remove it to explain the rest"
)
_XFF = re.compile(r"x-forwarded-for", re.IGNORECASE)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?$")


def parse_time(text: str, where: Directive) -> float:
    """An HAProxy duration (``2s``, ``500ms``, ``2000`` = ms) in seconds."""
    match = _TIME.match(text)
    if not match:
        raise ExplainError(
            where.file, where.line, f"{text!r}: expected a duration such as 2s, 500ms or 2000"
        )
    return float(match[1]) * _UNITS[match[2] or "ms"]


def _int(text: str, where: Directive, what: str) -> int:
    if not text.isdigit():
        raise ExplainError(where.file, where.line, f"{what}: expected a whole number, got {text!r}")
    return int(text)


@dataclass
class Server:
    """One ``server`` line (a ``server-template`` stands for ``count`` of them)."""

    name: str
    host: str
    port: int | None
    options: dict[str, str]
    where: Directive
    count: int = 1


@dataclass
class HAProxySetup:
    """The traffic-carrying frontend of a haproxy.cfg, its backend and what they configure."""

    file: str
    frontend: Section
    backend: Section
    bind: tuple[str, int] | None
    bind_where: Where | None
    mode: str
    mode_where: Where | None
    servers: list[Server]
    forwardfor: Directive | None
    httpchk: Directive | None
    timeout_connect: Directive | None
    timeout_check: Directive | None
    ignored: list[Ignored] = field(default_factory=list)

    @property
    def first(self) -> Server:
        """The first server (the model uses one setting for every server)."""
        return self.servers[0]


def _address(text: str, where: Directive) -> tuple[str, int | None]:
    for prefix in ("ipv4@", "ipv6@"):
        text = text.removeprefix(prefix)
    if "@" in text:
        raise ExplainError(where.file, where.line, f"{text!r}: only IP (or name) addresses")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if host in ("", "*"):
        host = "0.0.0.0"
    return host, _int(port, where, "port") if port else None


def _server(d: Directive, defaults: dict[str, str], ignored: list[Ignored]) -> Server:
    template = d.words[0] == "server-template"
    need = 4 if template else 3
    if len(d.words) < need:
        raise ExplainError(d.file, d.line, f"`{d.words[0]}` needs a name and an address")
    count = 1
    if template:
        low, dash, high = d.words[2].partition("-")
        count = _int(low, d, "server-template count")
        if dash:
            count = _int(high, d, "server-template range") - count + 1
    host, port = _address(d.words[need - 1], d)
    options = dict(defaults)
    words = list(d.words[need:])
    while words:
        word = words.pop(0)
        if word in _WITH_ARG and words:
            options[word] = words.pop(0)
        elif word in _FLAGS:
            if word.startswith("no-") and word[3:] in options:
                del options[word[3:]]
            else:
                options[word] = ""
        else:
            ignored.append(Ignored(d.file, d.line, f"server option {word!r} (not understood)"))
    if "usesrc" in options or "usesrc" in options.get("source", ""):
        raise ExplainError(
            d.file,
            d.line,
            _USESRC,
        )
    if "check-send-proxy" in d.words:
        raise ExplainError(
            d.file,
            d.line,
            "`check-send-proxy` (PROXY on checks with an explicit port, H4) is not modelled",
        )
    return Server(d.words[1], host, port, options, d, count)


def _default_server(section: Section) -> dict[str, str]:
    merged: dict[str, str] = {}
    chain = []
    current: Section | None = section
    while current is not None:
        chain.append(current)
        current = current.defaults
    for sec in reversed(chain):
        for d in sec.own("default-server"):
            probe = Directive(("server", "default", "0.0.0.0:0", *d.words[1:]), d.file, d.line)
            merged.update(_server(probe, merged, []).options)
    return merged


def _pick_frontend(sections: list[Section], file: str) -> tuple[Section, Section]:
    proxies = {s.name: s for s in sections if s.kind in ("backend", "listen")}
    fronts = [s for s in sections if s.kind in ("frontend", "listen")]
    if not fronts:
        raise ExplainError(file, 0, "no frontend or listen section: nothing receives traffic")
    for front in fronts:
        if front.kind == "listen" and (front.own("server") or front.own("server-template")):
            return front, front
        chosen = front.find("default_backend")
        if chosen is None and len(front.own("use_backend")) == 1:
            chosen = front.own("use_backend")[0]
        if chosen is not None and len(chosen.words) > 1:
            if chosen.words[1] not in proxies:
                raise ExplainError(chosen.file, chosen.line, f"no backend {chosen.words[1]!r}")
            return front, proxies[chosen.words[1]]
    raise ExplainError(fronts[0].file, fronts[0].line, "no default_backend with servers found")


def _bind(front: Section) -> tuple[tuple[str, int] | None, Where | None, list[Ignored]]:
    binds = front.own("bind")
    if front.kind == "listen" and front.args and not binds:
        host, port = _address(front.args[0].split(",")[0], Directive((), front.file, front.line))
        return ((host, port or 0), Where(front.file, front.line), [])
    if not binds:
        return None, None, []
    first = binds[0]
    if len(first.words) < 2:
        raise ExplainError(first.file, first.line, "`bind` needs an address:port")
    host, port = _address(first.words[1].split(",")[0], first)
    notes = []
    for d in binds:
        if "ssl" in d.words[2:]:
            notes.append(
                Ignored(
                    d.file,
                    d.line,
                    "TLS ends at HAProxy here (H9); the model's clients speak plain HTTP",
                )
            )
        if "accept-proxy" in d.words[2:]:
            notes.append(
                Ignored(
                    d.file,
                    d.line,
                    "accept-proxy (H6): the model's clients connect to HAProxy themselves",
                )
            )
    return (host, port or 0), Where(first.file, first.line), notes


def _unknown_directives(sections: list[Section], front: Section, back: Section) -> list[Ignored]:
    used: list[Section] = []
    for sec in (front, back):
        while sec is not None and sec not in used:
            used.append(sec)
            sec = sec.defaults  # type: ignore[assignment]
    out: list[Ignored] = []
    for sec in sections:
        if sec.kind in ("backend", "listen", "frontend") and sec not in used:
            out.append(Ignored(sec.file, sec.line, f"{sec.kind} {sec.name!r}: not on the path"))
            continue
        if sec.kind == "global":
            known = _GLOBAL_KEYWORDS
        elif sec in used:
            known = _PROXY_KEYWORDS
        else:
            continue
        for d in sec.body:
            word = d.keyword
            if sec.kind == "global" and word.startswith(("tune.", "ssl-", "log-", "lua-")):
                continue
            if word not in known:
                out.append(Ignored(d.file, d.line, f"directive {word!r} (not understood)"))
            elif word == "source" and "usesrc" in d.words:
                raise ExplainError(
                    d.file,
                    d.line,
                    _USESRC,
                )
            elif word.startswith("http-request") and any(_XFF.search(w) for w in d.words):
                out.append(
                    Ignored(
                        d.file,
                        d.line,
                        "an http-request rule on X-Forwarded-For (not "
                        "modelled: it matters only when clients send their own XFF, H7)",
                    )
                )
    return out


def read_setup(sections: list[Section], file: str) -> HAProxySetup:
    """The model's view of one haproxy.cfg (see the module docstring).

    Raises:
        ExplainError: no frontend, a missing backend, no servers, or an unmodelled setting
            that changes the answer.
    """
    front, back = _pick_frontend(sections, file)
    ignored: list[Ignored] = []
    defaults = _default_server(back)
    lines = back.own("server") + back.own("server-template")
    servers = [_server(d, defaults, ignored) for d in sorted(lines, key=lambda d: d.line)]
    servers = [s for s in servers if "disabled" not in s.options]
    if not servers:
        raise ExplainError(back.file, back.line, f"backend {back.name!r} has no enabled server")
    bind, bind_where, more = _bind(front)
    ignored += more
    mode_line = back.find("mode") or front.find("mode")
    mode = mode_line.words[1] if mode_line is not None and len(mode_line.words) > 1 else "tcp"
    if mode not in ("tcp", "http"):
        raise ExplainError(
            file, mode_line.line if mode_line else 0, f"mode {mode!r}: expected tcp or http"
        )
    ignored += _unknown_directives(sections, front, back)
    forwardfor = back.option("forwardfor") or front.option("forwardfor")
    httpchk = back.option("httpchk")
    return HAProxySetup(
        file=file,
        frontend=front,
        backend=back,
        bind=bind,
        bind_where=bind_where,
        mode=mode,
        mode_where=Where(mode_line.file, mode_line.line) if mode_line else None,
        servers=servers,
        forwardfor=forwardfor,
        httpchk=httpchk,
        timeout_connect=back.find("timeout", "connect") or back.find("contimeout"),
        timeout_check=back.find("timeout", "check"),
        ignored=ignored,
    )


def modelled_v2_options(server: Server) -> tuple[tuple[str, ...], list[str]]:
    """The server's ``proxy-v2-options`` split into modelled ones and the rest (H2)."""
    names = [o for o in server.options.get("proxy-v2-options", "").split(",") if o]
    if "send-proxy-v2-ssl" in server.options or "send-proxy-v2-ssl-cn" in server.options:
        names.append("ssl")
    if "send-proxy-v2-ssl-cn" in server.options:
        names.append("cert-cn")
    unique = list(dict.fromkeys(names))
    kept = tuple(o for o in unique if o in _MODELLED_V2_OPTIONS)
    return kept, [o for o in unique if o not in _MODELLED_V2_OPTIONS]
