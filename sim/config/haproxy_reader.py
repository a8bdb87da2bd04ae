"""A small reader for ``haproxy.cfg``: sections, keywords and ``defaults`` inheritance.

Real format: HAProxy 2.x's configuration language (``doc/configuration.txt`` §2-4, H11): a file
is a list of sections (``global``, ``defaults [NAME]``, ``frontend``, ``backend``, ``listen`` and
a few others); a line is words separated by blanks, with ``\\`` escapes, ``"..."`` and
``'...'`` quoting and ``#`` comments outside quotes. A proxy section takes its settings from the
last ``defaults`` section above it, or from ``from NAME``; its own lines override them. This
module only splits and groups; :mod:`sim.config.haproxy_model` gives the keywords their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.config.findings import ExplainError

__all__ = ["SECTIONS", "Directive", "Section", "read_haproxy", "split_words"]

SECTIONS = (
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "crt-store",
    "log-forward",
    "traces",
)
"""Every keyword that opens a section in HAProxy 2.x/3.x."""
PROXIES = ("defaults", "frontend", "backend", "listen")
"""The sections whose lines configure traffic."""


@dataclass(frozen=True)
class Directive:
    """One configuration line: its words (unquoted), file and 1-based line number."""

    words: tuple[str, ...]
    file: str
    line: int

    @property
    def keyword(self) -> str:
        """The keyword, with a leading ``no`` kept as part of it (``no option x``)."""
        return self.words[0]


@dataclass
class Section:
    """One section: ``kind`` (``backend`` ...), ``name``, its header line and its lines."""

    kind: str
    name: str
    file: str
    line: int
    args: tuple[str, ...] = ()
    body: list[Directive] = field(default_factory=list)
    defaults: Section | None = None

    def own(self, *keyword: str) -> list[Directive]:
        """This section's own lines whose first words are ``keyword``."""
        n = len(keyword)
        return [d for d in self.body if d.words[:n] == keyword]

    def find(self, *keyword: str) -> Directive | None:
        """The line that decides ``keyword`` here: the last one of this section, else of its
        defaults section (HAProxy: a later line overrides an earlier one)."""
        mine = self.own(*keyword)
        if mine:
            return mine[-1]
        return self.defaults.find(*keyword) if self.defaults is not None else None

    def option(self, name: str) -> Directive | None:
        """The ``option NAME`` line in force, or ``None`` if unset or cancelled by ``no option``."""
        for section in self._chain():
            picked = [
                d
                for d in section.body
                if d.words[:2] == ("option", name) or d.words[:3] == ("no", "option", name)
            ]
            if picked:
                return None if picked[-1].words[0] == "no" else picked[-1]
        return None

    def _chain(self) -> list[Section]:
        out: list[Section] = []
        section: Section | None = self
        while section is not None:
            out.append(section)
            section = section.defaults
        return out


def split_words(text: str, file: str = "haproxy.cfg", line: int = 0) -> tuple[str, ...]:
    """Split one line into words as HAProxy does (quotes, ``\\`` escapes, ``#`` comments)."""
    words: list[str] = []
    word: list[str] = []
    started = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                word.append(text[i])
            else:
                word.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            word.append(text[i])
            started = True
        elif ch in "\"'":
            quote, started = ch, True
        elif ch == "#":
            break
        elif ch.isspace():
            if started:
                words.append("".join(word))
                word, started = [], False
        else:
            word.append(ch)
            started = True
        i += 1
    if quote:
        raise ExplainError(file, line, f"unterminated {quote} quote")
    if started:
        words.append("".join(word))
    return tuple(words)


def _header(words: tuple[str, ...], file: str, line: int) -> Section:
    kind = words[0]
    rest = list(words[1:])
    from_name = ""
    if "from" in rest[1:] and kind in PROXIES:
        at = rest.index("from", 1)
        if at + 1 >= len(rest):
            raise ExplainError(file, line, f"`{kind} ... from` needs a defaults section name")
        from_name = rest[at + 1]
        rest = rest[:at] + rest[at + 2 :]
    if kind in ("frontend", "backend", "listen") and not rest:
        raise ExplainError(file, line, f"`{kind}` needs a name")
    name = rest[0] if rest else ""
    section = Section(kind, name, file, line, tuple(rest[1:]))
    if from_name:
        section.args = (*section.args, f"from={from_name}")
    return section


def read_haproxy(text: str, file: str = "haproxy.cfg") -> list[Section]:
    """Every section of ``text`` in order, each proxy linked to the defaults it inherits.

    Raises:
        ExplainError: a line outside any section, an unterminated quote, a section without the
            name it needs, or ``from`` naming a defaults section that does not exist above.
    """
    sections: list[Section] = []
    named: dict[str, Section] = {}
    last_defaults: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        words = split_words(raw, file, number)
        if not words:
            continue
        if words[0] in SECTIONS:
            section = _header(words, file, number)
            from_name = next((a[5:] for a in section.args if a.startswith("from=")), "")
            if from_name:
                if from_name not in named:
                    raise ExplainError(file, number, f"no defaults section {from_name!r} above")
                section.defaults = named[from_name]
            elif section.kind in ("frontend", "backend", "listen"):
                section.defaults = last_defaults
            if section.kind == "defaults":
                last_defaults = section
                if section.name:
                    named[section.name] = section
            sections.append(section)
            continue
        if not sections:
            raise ExplainError(
                file, number, f"{words[0]!r} before any section (expected global, defaults, ...)"
            )
        sections[-1].body.append(Directive(words, file, number))
    return sections
