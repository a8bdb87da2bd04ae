"""``srcip-lab explain``: from a user's files to "what IP will my app see, and why".

Reads any mix of ``haproxy.cfg`` files, Kubernetes YAML (one or more documents, ``kind: List``)
and directories of them; builds the :class:`~sim.Scenario` they imply
(:mod:`sim.config.infer`); simulates it (:func:`sim.simulate`) and traces one connection
(:func:`sim.trace`); and checks the known pitfalls (:mod:`sim.config.pitfalls`). The result,
:class:`Explanation`, renders as text (:mod:`sim.config.report`) or as the JSON object
documented in ``docs/reference/explain-json.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sim.config.findings import Assumed, ExplainError, Ignored, Inferred, Pitfall
from sim.config.haproxy_model import HAProxySetup, read_setup
from sim.config.haproxy_reader import SECTIONS, read_haproxy, split_words
from sim.config.infer import infer
from sim.config.k8s_model import read_cluster
from sim.config.pitfalls import find_pitfalls
from sim.config.yaml_reader import Doc, load_yaml
from sim.results import Result
from sim.scenario import Scenario

__all__ = ["ExplainError", "Explanation", "explain"]

YAML_SUFFIXES = (".yaml", ".yml", ".json")
HAPROXY_SUFFIXES = (".cfg",)


@dataclasses.dataclass
class Explanation:
    """What ``explain`` found: the implied scenario and every reason behind it.

    :meth:`verdict` and :meth:`trace` simulate the scenario (once; cached); :meth:`report` is
    the whole answer as plain data (the ``--json`` output).
    """

    scenario: Scenario
    inferred: list[Inferred]
    assumed: list[Assumed]
    ignored: list[Ignored]
    warnings: list[Pitfall]
    addresses: list[dict[str, str]]
    files: list[str]
    _result: Result | None = dataclasses.field(default=None, repr=False, compare=False)

    def result(self) -> Result:
        """The simulation of :attr:`scenario` (run on first use)."""
        if self._result is None:
            from sim.topology import simulate

            self._result = simulate(self.scenario)
        return self._result

    def verdict(self) -> dict[str, Any]:
        """Reachability and which address the gateway and the app saw (``docs/reference``)."""
        from sim.config.report import verdict

        return verdict(self.result())

    def trace(self) -> dict[str, Any]:
        """The hop-by-hop path of one connection (:func:`sim.trace`) as plain data."""
        from sim.trace import trace

        hops = trace(self.scenario)
        return {
            "conn_id": int(hops.attrs["conn_id"]),
            "outcome": str(hops.attrs["outcome"]),
            "reason": str(hops.attrs["reason"]),
            "hops": [
                {str(k): _plain(v) for k, v in row.items()} for row in hops.to_dict("records")
            ],
        }

    def report(self) -> dict[str, Any]:
        """Everything as JSON-ready data: scenario, inferred, assumed, ignored, addresses,
        verdict, trace, warnings."""
        return {
            "files": self.files,
            "scenario": scenario_dict(self.scenario),
            "inferred": [dataclasses.asdict(i) for i in self.inferred],
            "assumed": [dataclasses.asdict(a) for a in self.assumed],
            "ignored": [dataclasses.asdict(i) for i in self.ignored],
            "addresses": self.addresses,
            "verdict": self.verdict(),
            "trace": self.trace(),
            "warnings": [dataclasses.asdict(w) for w in self.warnings],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def scenario_dict(scenario: Scenario) -> dict[str, Any]:
    """``scenario`` as JSON-ready data (tuples as lists; each failure with its ``type``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(scenario):
        value = getattr(scenario, f.name)
        if f.name == "haproxy" and value is not None:
            value = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        elif f.name == "failures":
            value = [{"type": type(e).__name__, **dataclasses.asdict(e)} for e in value]
        out[f.name] = _plain(value)
    return out


def _kind(path: Path, text: str) -> str:
    if path.suffix in HAPROXY_SUFFIXES or path.name.startswith("haproxy"):
        return "haproxy"
    if path.suffix in YAML_SUFFIXES:
        return "yaml"
    for number, line in enumerate(text.splitlines(), start=1):
        words = split_words(line, str(path), number)
        if words:
            return "haproxy" if words[0] in SECTIONS else "yaml"
    return "yaml"


def _collect(paths: Sequence[str | Path], ignored: list[Ignored]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.is_dir():
                    ignored.append(
                        Ignored(
                            str(entry),
                            0,
                            "a subdirectory: not read (pass it explicitly to read it)",
                        )
                    )
                elif entry.suffix in YAML_SUFFIXES + HAPROXY_SUFFIXES:
                    files.append(entry)
                else:
                    ignored.append(Ignored(str(entry), 0, "not a .cfg, .yaml, .yml or .json file"))
        elif path.is_file():
            files.append(path)
        else:
            raise ExplainError(str(path), 0, "no such file or directory")
    return files


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExplainError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExplainError(str(path), 0, f"not UTF-8 text (byte {exc.start})") from None


def _load(files: list[Path], ignored: list[Ignored]) -> tuple[list[Doc], HAProxySetup | None]:
    docs: list[Doc] = []
    setup: HAProxySetup | None = None
    for path in files:
        text = _read(path)
        name = str(path)
        if _kind(path, text) == "haproxy":
            if setup is not None:
                ignored.append(Ignored(name, 0, f"a second haproxy.cfg (using {setup.file})"))
                continue
            setup = read_setup(read_haproxy(text, name), name)
            continue
        found, skipped = load_yaml(text, name)
        docs += found
        ignored += [Ignored(name, line, why) for line, why in skipped]
    return docs, setup


def explain(paths: Sequence[str | Path], *, changes: Iterable[tuple[str, Any]] = ()) -> Explanation:
    """Read ``paths`` (files or directories) and explain the setup they describe.

    Args:
        paths: ``haproxy.cfg`` files, YAML files, or directories (their ``*.cfg``, ``*.yaml``,
            ``*.yml`` and ``*.json`` files; subdirectories are not read).
        changes: ``(key, value)`` changes to the implied scenario, as ``--set`` takes them
            (e.g. traffic the files cannot say).

    Raises:
        ExplainError: a path is missing or unreadable, a YAML file does not parse, a setting
            would change the answer but is not modelled, or nothing relevant was found.
    """
    if not paths:
        raise ExplainError("explain", 0, "give at least one file or directory")
    ignored: list[Ignored] = []
    files = _collect(paths, ignored)
    docs, setup = _load(files, ignored)
    view = read_cluster(docs)
    relevant = (view.service, view.deployment, view.announcer, view.encapsulation, setup)
    if all(v is None for v in relevant) and not view.nodes and not view.filters.envoyfilter:
        raise ExplainError(
            str(paths[0]),
            0,
            "nothing to explain: no haproxy.cfg, Service, "
            "gateway Deployment, MetalLB, Istio or Calico resource found",
        )
    inf = infer(view, setup)
    try:
        scenario = Scenario(name="explain", **inf.fields)
    except ValueError as exc:
        raise ExplainError(
            str(paths[0]), 0, f"the files imply an invalid scenario: {exc}"
        ) from None
    changes = list(changes)
    if changes:
        from sim.overrides import apply_overrides

        scenario = apply_overrides(scenario, changes)
        changed = {key for key, _value in changes}
        inf.assumed = [a for a in inf.assumed if a.field not in changed]
        for key, value in changes:
            inf.inferred.append(Inferred(key, value, "--set", 0, "the command line"))
    ignored = [*ignored, *view.ignored, *(setup.ignored if setup else [])]
    return Explanation(
        scenario=scenario,
        inferred=inf.inferred,
        assumed=inf.assumed,
        ignored=ignored,
        warnings=find_pitfalls(scenario, inf),
        addresses=inf.addresses,
        files=[str(f) for f in files],
    )
