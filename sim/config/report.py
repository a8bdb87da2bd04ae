"""The verdict of an explained setup, and its text rendering (``srcip-lab explain``).

:func:`verdict` condenses a :class:`~sim.Result`: reachability and ``client_ip_seen_pct`` exactly
as :meth:`sim.Result.summary` reports them, plus which address the gateway and the application
ended up with (the client, HAProxy, a node IP, a Calico tunnel IP, N3, C4), as shares of the
successful connections. :func:`render_text` prints a report dict section by section.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sim.addresses import HAPROXY_IP
from sim.results import Result

__all__ = ["render_text", "verdict"]


def _classifier(result: Result) -> dict[str, str]:
    names = {HAPROXY_IP: "HAProxy"}
    for row in result.nodes.to_dict("records"):
        names[str(row["node_ip"])] = f"{row['node']} node IP"
        names[str(row["tunnel_ip"])] = f"{row['node']} tunnel IP (Calico, N2)"
    return names


def _shares(result: Result, column: str) -> list[dict[str, Any]]:
    conns = result.connections
    ok = conns[conns["outcome"] == "ok"] if len(conns) else conns
    if not len(ok):
        return []
    names = _classifier(result)
    counts: Counter[tuple[str, str]] = Counter()
    for seen, client in zip(ok[column], ok["client_ip"], strict=True):
        if seen == client:
            counts[("the client's own IP", "")] += 1
        else:
            counts[(names.get(str(seen), "another address"), str(seen))] += 1
    total = len(ok)
    return [
        {"what": what, "ip": ip, "pct": round(100.0 * n / total, 3)}
        for (what, ip), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def verdict(result: Result) -> dict[str, Any]:
    """Reachability, who saw the client, and how connections failed (see the module docstring)."""
    summary = result.summary()
    conns = result.connections
    ok = conns[conns["outcome"] == "ok"] if len(conns) else conns
    at_gateway = (
        round(100.0 * float((ok["gateway_client_ip"] == ok["client_ip"]).mean()), 3)
        if len(ok)
        else 0.0
    )
    return {
        "connections": int(summary["connections"]),
        "ok": int(summary["ok"]),
        "reachability_pct": summary["reachability_pct"],
        "client_ip_seen_pct": summary["client_ip_seen_pct"],
        "gateway_client_ip_seen_pct": at_gateway,
        "app_saw": _shares(result, "app_remote_ip"),
        "gateway_saw": _shares(result, "gateway_client_ip"),
        "failed": {
            k.removeprefix("failed_"): v for k, v in summary.items() if k.startswith("failed_")
        },
    }


def _where(file: str, line: int) -> str:
    return f"{file}:{line}" if line else file


def _saw(rows: list[dict[str, Any]]) -> str:
    return (
        "; ".join(f"{r['what']}{' ' + r['ip'] if r['ip'] else ''} {r['pct']:g} %" for r in rows)
        or "nothing (no connection succeeded)"
    )


def _verdict_lines(v: dict[str, Any]) -> list[str]:
    lines = [
        "Verdict (simulated: " + f"{v['connections']} connections)",
        f"  reachability: {v['reachability_pct']:g} % of connections succeed",
        f"  the gateway saw the client IP in {v['gateway_client_ip_seen_pct']:g} %: "
        + _saw(v["gateway_saw"]),
        f"  the app saw the client IP in {v['client_ip_seen_pct']:g} %: " + _saw(v["app_saw"]),
    ]
    if v["failed"]:
        lines.append("  failures: " + ", ".join(f"{k} {n}" for k, n in v["failed"].items()))
    return lines


def _trace_lines(t: dict[str, Any]) -> list[str]:
    ending = t["outcome"] + (f" ({t['reason']})" if t["reason"] else "")
    lines = [f"Path of connection {t['conn_id']}, hop by hop (outcome: {ending})"]
    for hop in t["hops"]:
        lines.append(f"  {hop['hop']}. {hop['element']}: {hop['src']} -> {hop['dst']}")
        if hop["rewrite"]:
            lines.append(f"     {hop['rewrite']}")
        if hop["proxy_header_hex"]:
            lines.append(f"     PROXY header: {hop['proxy_header_hex']}")
        if hop["xff"]:
            lines.append(f"     X-Forwarded-For: {hop['xff']}")
    return lines


def render_text(report: dict[str, Any]) -> str:
    """The report as the text ``srcip-lab explain`` prints."""
    out = [f"Read {len(report['files'])} file(s): " + ", ".join(report["files"]), "", "Inferred"]
    out += [
        f"  {i['field']} = {i['value']!r}  ({_where(i['file'], i['line'])}: {i['why']})"
        for i in report["inferred"]
    ] or ["  (nothing)"]
    out += ["", "Assumed"]
    out += [f"  {a['field']} = {a['value']!r}: {a['reason']}" for a in report["assumed"]]
    if report["ignored"]:
        out += ["", "Ignored"]
        out += [f"  {_where(i['file'], i['line'])}: {i['what']}" for i in report["ignored"]]
    mapped = [a for a in report["addresses"] if a["model"] != a["yours"]]
    if mapped:
        out += ["", "Your addresses in the model"]
        out += [f"  {a['what']}: yours {a['yours']} = model {a['model']}" for a in mapped]
    out += ["", *_trace_lines(report["trace"]), "", *_verdict_lines(report["verdict"]), ""]
    out.append("Warnings" if report["warnings"] else "Warnings: none")
    for w in report["warnings"]:
        level = "" if w["level"] == "warning" else " (note)"
        out.append(f"  [{w['fact']}]{level} {_where(w['file'], w['line'])}: {w['message']}")
    return "\n".join(out) + "\n"
