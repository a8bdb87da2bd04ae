"""The haproxy.cfg reader on real-world shapes: quoting, comments, defaults inheritance, several
backends, server-template, default-server; and its errors (sim.config.haproxy_reader/_model)."""

from __future__ import annotations

import pytest

from sim.config import ExplainError
from sim.config.haproxy_model import parse_time, read_setup
from sim.config.haproxy_reader import Directive, read_haproxy, split_words


def setup_of(text: str):  # type: ignore[no-untyped-def]
    return read_setup(read_haproxy(text, "h.cfg"), "h.cfg")


def test_split_words_quotes_escapes_and_comments() -> None:
    assert split_words("  server s1 10.0.0.1:80 check   # the VIP") == (
        "server",
        "s1",
        "10.0.0.1:80",
        "check",
    )
    assert split_words('log-format "%ci # not a comment" \\#literal') == (
        "log-format",
        "%ci # not a comment",
        "#literal",
    )
    assert split_words("errorfile 503 '/etc/haproxy/errors/503 page.http'") == (
        "errorfile",
        "503",
        "/etc/haproxy/errors/503 page.http",
    )
    assert split_words('acl a hdr(host) -i "a\\"b"') == ("acl", "a", "hdr(host)", "-i", 'a"b')
    assert split_words("\t# only a comment") == ()
    with pytest.raises(ExplainError, match=r"h\.cfg:7: unterminated"):
        split_words('bind "10.0.0.5:80', "h.cfg", 7)


def test_sections_and_defaults_inheritance() -> None:
    text = """\
global
    daemon
defaults
    mode http
    timeout connect 4s
defaults tcpdefs
    mode tcp
    timeout connect 1s
frontend fe from tcpdefs
    bind :80
    default_backend be
backend be
    server s 10.0.0.100:80 check
backend be2 from tcpdefs
    server s 10.0.0.100:80
"""
    sections = read_haproxy(text, "h.cfg")
    kinds = [(s.kind, s.name, s.line) for s in sections]
    assert kinds == [
        ("global", "", 1),
        ("defaults", "", 3),
        ("defaults", "tcpdefs", 6),
        ("frontend", "fe", 9),
        ("backend", "be", 12),
        ("backend", "be2", 14),
    ]
    fe, be, be2 = sections[3:]
    assert fe.defaults is sections[2] and be2.defaults is sections[2]
    assert be.defaults is sections[2]  # the last defaults section above wins
    found = be.find("timeout", "connect")
    assert isinstance(found, Directive) and found.words[-1] == "1s" and found.line == 8


def test_option_and_no_option() -> None:
    text = """\
defaults
    option forwardfor
frontend fe
    mode http
    bind :80
    default_backend be
backend be
    mode http
    no option forwardfor
    server s 10.0.0.100:80
"""
    # HAProxy adds the header when the frontend OR the backend has the option: the frontend
    # still inherits it from defaults here.
    assert setup_of(text).forwardfor is not None
    both = text.replace(
        "    mode http\n    bind", "    mode http\n    no option forwardfor\n    bind"
    )
    assert setup_of(both).forwardfor is None


def test_picks_the_default_backend_among_several_and_default_server() -> None:
    text = """\
listen stats
    bind :8404
    stats enable
frontend www
    bind 192.168.1.5:443 ssl crt /etc/ssl/x.pem
    use_backend api if { path_beg /api }
    default_backend k8s
backend api
    server api1 192.168.1.50:8080
backend k8s
    default-server inter 3s fall 2 rise 4 send-proxy-v2
    server vip 192.168.1.240:80 check
    server backup1 192.168.1.241:80 check disabled
"""
    st = setup_of(text)
    assert st.backend.name == "k8s" and st.frontend.name == "www"
    assert [s.name for s in st.servers] == ["vip"]  # disabled servers do not carry traffic
    assert st.first.options == {
        "inter": "3s",
        "fall": "2",
        "rise": "4",
        "send-proxy-v2": "",
        "check": "",
    }
    assert st.bind == ("192.168.1.5", 443)
    ignored = [i.what for i in st.ignored]
    assert "backend 'api': not on the path" in ignored
    assert "listen 'stats': not on the path" in ignored
    assert any("TLS ends at HAProxy" in w for w in ignored)


def test_server_template_and_listen() -> None:
    text = """\
listen k8s
    bind :80
    mode tcp
    server-template node 1-3 10.0.0.11:30080 check port 30081 send-proxy-v2
"""
    st = setup_of(text)
    assert st.frontend is st.backend
    assert [(s.name, s.count, s.port, s.options["port"]) for s in st.servers] == [
        ("node", 3, 30080, "30081")
    ]
    assert setup_of(text.replace("1-3", "5")).servers[0].count == 5


def test_unknown_directives_and_server_options_are_listed() -> None:
    text = """\
global
    frobnicate yes
frontend fe
    bind :80
    default_backend be
    http-request set-header X-Forwarded-For %[src]
backend be
    teleport on
    server s 10.0.0.100:80 check wibble
"""
    ignored = {(i.line, i.what) for i in setup_of(text).ignored}
    assert (2, "directive 'frobnicate' (not understood)") in ignored
    assert (8, "directive 'teleport' (not understood)") in ignored
    assert (9, "server option 'wibble' (not understood)") in ignored
    assert any(line == 6 and "X-Forwarded-For" in what for line, what in ignored)


def test_times() -> None:
    d = Directive(("inter",), "h.cfg", 3)
    assert [parse_time(t, d) for t in ("2s", "500ms", "2000", "1m", "250us")] == [
        2.0,
        0.5,
        2.0,
        60.0,
        0.00025,
    ]
    with pytest.raises(ExplainError, match=r"h\.cfg:3: '2 s'"):
        parse_time("2 s", d)


BAD = {
    "outside": ("bind :80\nfrontend fe\n", "h.cfg:1: 'bind' before any section"),
    "no-frontend": ("backend be\n    server s 1.2.3.4:80\n", "h.cfg: no frontend or listen"),
    "missing-backend": (
        "frontend fe\n    bind :80\n    default_backend nope\n",
        "h.cfg:3: no backend 'nope'",
    ),
    "no-server": (
        "frontend fe\n    bind :80\n    default_backend be\nbackend be\n",
        "h.cfg:4: backend 'be' has no enabled server",
    ),
    "usesrc": (
        "frontend fe\n    bind :80\n    default_backend be\nbackend be\n    source "
        "0.0.0.0 usesrc clientip\n    server s 1.2.3.4:80\n",
        "h.cfg:5: `source ... usesrc`",
    ),
    "check-send-proxy": (
        "frontend fe\n    bind :80\n    default_backend be\nbackend be\n    "
        "server s 1.2.3.4:80 check port 81 check-send-proxy\n",
        "h.cfg:5: `check-send-proxy`",
    ),
    "unnamed": ("backend\n", "h.cfg:1: `backend` needs a name"),
    "from-unknown": ("backend be from nowhere\n", "h.cfg:1: no defaults section 'nowhere'"),
    "mode": (
        "frontend fe\n    bind :80\n    default_backend be\nbackend be\n    mode udp\n    "
        "server s 1.2.3.4:80\n",
        "h.cfg:5: mode 'udp'",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_haproxy_cfg_is_one_clear_error(name: str) -> None:
    text, message = BAD[name]
    with pytest.raises(ExplainError) as info:
        setup_of(text)
    assert str(info.value).startswith(message.split(": ", 1)[0])
    assert message.split(": ", 1)[1] in str(info.value)
    assert "\n" not in str(info.value)
