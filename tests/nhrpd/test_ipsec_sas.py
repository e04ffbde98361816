"""The daemon's own reading of charon's `list-sas` (it shares no parser with the judge)."""

from __future__ import annotations

from dmvpnkit.nhrpd.ipsec import Protection


class Session:
    def __init__(self, listing: list[dict]):
        self.listing = listing

    def list_sas(self):
        return iter(self.listing)


def sa(uid: str, remote: str, state: str = "ESTABLISHED", child: str = "INSTALLED") -> dict:
    return {f"peer-{remote}": {"uniqueid": uid.encode(), "state": state.encode(), "remote-host": remote.encode(),
                               "child-sas": {"gre-1": {"state": child.encode()}} if child else {}}}


def test_only_established_sas_with_an_installed_child_count() -> None:
    listing = [sa("1", "172.16.0.10"), sa("2", "172.16.0.10", state="CONNECTING"),
               sa("3", "172.16.0.10", child="REKEYING"), sa("4", "172.16.0.10", child=""),
               sa("5", "172.16.0.14"), sa("6", "172.16.0.10")]
    assert Protection._established(Session(listing), "172.16.0.10") == ["1", "6"]
    assert Protection._established(Session(listing), "172.16.0.99") == []
