"""Implementation profiles: checked whole before any lab starts, and their state
mappings (tests/fixtures/test_implementations_lab.py runs the FRR profile on a lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.labs import implementations
from dmvpnkit.labs.implementations import profile
from dmvpnkit.labs.lab import LabError, parse_impl
from dmvpnkit.labs.views import CacheEntry, Shortcut

REPO = Path(__file__).parents[2]
GOOD = """
name: mine
version: [echo, "mine 1.0 {{ var.flavour }}"]
variables: {flavour: plain}
files:
  mine.conf: mine.j2
start:
  - sh: "mined -f {{ node_dir }}/mine.conf"
  - wait_for: "{{ run_dir }}/mine.sock"
    timeout: 5
stop:
  - kill: "{{ run_dir }}/mine.pid"
state:
  cache:
    run: "mine-cli show cache"
    regex: '^(?P<protocol>\\S+) via (?P<nbma>\\S+) (?P<type>\\w+)$'
unimplemented: {multicast: not yet}
ipsec_couplings: [trap]
"""


@pytest.fixture(autouse=True)
def _forget_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles added here stay out of the other tests' registry."""
    monkeypatch.setattr(implementations, "_added", dict(implementations._added))


def write(tmp_path: Path, text: str, template: str = "role {{ v.role }} at {{ v.tunnel_address }}\\n") -> Path:
    (tmp_path / "mine.j2").write_text(template)
    (tmp_path / "mine.yaml").write_text(text)
    return tmp_path / "mine.yaml"


def test_a_good_profile_becomes_an_implementation(tmp_path: Path) -> None:
    name = implementations.resolve(str(write(tmp_path, GOOD)))
    cls = implementations.get(name)
    assert (name, cls.views, cls.ipsec_couplings, dict(cls.unimplemented)) == \
        ("mine", ("cache",), ("trap",), {"multicast": "not yet"})
    assert implementations.check(cls) == []
    assert cls.version({}) == "mine 1.0 plain" and cls.version({"flavour": "spicy"}) == "mine 1.0 spicy"
    assert implementations.profile_path("mine") == str((tmp_path / "mine.yaml").resolve())
    assert parse_impl(f"hub=frr,spoke={tmp_path / 'mine.yaml'}") == {"hub": "frr", "spoke": "mine"}


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    bad = GOOD.replace("stop:", "stopp:").replace('  - sh: "mined', '  - shh: "mined') \
              .replace("regex:", "json: table\n    regex:").replace("ipsec_couplings: [trap]", "ipsec_couplings: [vpn]")
    bad = bad.replace("start:\n", "start:\n  - sh: '{{ v.role '\n") + "reload:\n  - kill\n"
    with pytest.raises(profile.ProfileError) as e:
        profile.load(write(tmp_path, bad, template="{% if v.role %}no end\n"))
    msg = str(e.value)
    for needle in ("stopp: unknown key (hint: did you mean 'stop'?)",
                   "start[0].sh: template error",
                   "start[1]: a step is a mapping with one of sh, spawn, wait_for, kill",
                   "files.mine.conf (mine.j2): template error",
                   "state.cache: give exactly one of json",
                   "ipsec_couplings: unknown coupling 'vpn'",
                   "reload[0]: a step is a mapping"):
        assert needle in msg, msg
    assert msg.startswith(f"{len(e.value.issues)} error(s) in implementation profile") and len(e.value.issues) >= 7


def test_reload_is_declared_by_its_steps(tmp_path: Path) -> None:
    """Without `reload:` a reload is UNIMPLEMENTED, named; with it, its steps run."""
    cls = implementations.get(implementations.resolve(str(write(tmp_path, GOOD))))
    assert cls.profile.reload == ()
    with pytest.raises(implementations.Unimplemented, match=r"mine: reload: .*mine.yaml has no reload steps"):
        cls.reload(object.__new__(cls), "spoke1")       # refused before it touches a node
    with_reload = profile.load(write(tmp_path, GOOD.replace("state:", "reload:\n  - sh: mine-cli reload\nstate:")))
    assert [s.text.render() for s in with_reload.reload] == ["mine-cli reload"]


def test_a_profile_without_start_names_the_key(tmp_path: Path) -> None:
    text = GOOD[:GOOD.index("start:")] + GOOD[GOOD.index("stop:"):]
    with pytest.raises(LabError, match=r"mine.yaml: start: missing \(hint: the steps that start"):
        parse_impl(str(write(tmp_path, text)))


def test_views_are_mapped_from_json_and_from_lines() -> None:
    q = profile.StateQuery(argv=(), json_path=("table",), regex=None,
                           fields={"claimed_nbma": "claimed_nbma|claimedNbma"})
    out = 'Iface Type\n{"table": [{"protocol": "10.255.0.11", "nbma": "172.16.0.6", "claimedNbma": "172.16.0.6",' \
          ' "type": "dynamic", "used": true, "interface": "gre1"}]}'
    assert profile.parse_state(q, "cache", out, "t") == [
        CacheEntry("10.255.0.11", "172.16.0.6", "172.16.0.6", "dynamic", True, "gre1")]
    lines = profile.StateQuery(argv=(), json_path=None, regex=__import__("re").compile(
        r"^(?P<prefix>\S+) via (?P<via>\S+)$"), fields={})
    assert profile.parse_state(lines, "shortcuts", "header\n10.1.2.0/24 via 10.255.0.12\n", "t") == [
        Shortcut("10.1.2.0/24", "10.255.0.12", "", "")]
    with pytest.raises(implementations.ImplementationError, match=r"t: no 'table' in the output"):
        profile.parse_state(q, "cache", '{"entries": []}', "t")


def test_the_shipped_frr_profile_is_valid() -> None:
    p = profile.load(REPO / "implementations" / "frr-profile.yaml")
    assert p.name == "frr-profile" and set(p.state) == {"cache", "nhs", "shortcuts"} and "nhrpd" in p.daemons
