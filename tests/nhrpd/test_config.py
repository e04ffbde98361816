from __future__ import annotations

import ipaddress

import pytest

from dmvpnkit.nhrpd.config import Config, ConfigError
from dmvpnkit.nhrpd.faults import Fault

from .harness import hub_config, spoke_config


def test_spoke_config_parses() -> None:
    c = Config.from_dict(spoke_config("spoke1", faults=["no-renewal", "BAD_CHECKSUM"], auth="secret",
                                      nhs=[{"nbma": "172.16.0.1", "protocol": "10.255.0.1/24"}]))
    assert c.role == "spoke" and c.protocol_address == "10.255.0.11"
    assert c.nhs[0].protocol == "10.255.0.1"
    assert c.faults == {Fault.NO_RENEWAL, Fault.BAD_CHECKSUM}
    assert c.lan_prefixes == (ipaddress.IPv4Network("10.1.1.0/24"),)
    assert c.nat_extension is True and c.unique is False and c.network_id == 1


def test_hub_config_parses_routes() -> None:
    c = Config.from_dict(hub_config(driver={"nflog_group": 1}))
    assert [str(r.prefix) for r in c.routes] == ["10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24"]
    assert c.redirect and not c.nhs


@pytest.mark.parametrize(("change", "key"), [
    ({"role": "router"}, "role"),
    ({"protocol_address": "10.255.0.300"}, "protocol_address"),
    ({"nbma_address": 17}, "nbma_address"),
    ({"holdtime": 0}, "holdtime"),
    ({"holdtime": True}, "holdtime"),
    ({"nhs": []}, "nhs"),
    ({"nhs": [{"protocol": "10.255.0.1"}]}, "nhs[0].nbma"),
    ({"nhs": [{"nbma": "172.16.0.1", "port": 1}]}, "nhs[0].port"),
    ({"unique": "yes"}, "unique"),
    ({"auth": "much-too-long"}, "auth"),
    ({"faults": ["no-such-fault"]}, "faults[0]"),
    ({"faults": "no-renewal"}, "faults"),
    ({"routes": [{"prefix": "10.1.0.0/33", "via": "10.255.0.1"}]}, "routes[0].prefix"),
    ({"routes": [{"prefix": "10.1.0.0/16"}]}, "routes[0].via"),
    ({"lan_prefixes": ["nonsense"]}, "lan_prefixes[0]"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_config_names_the_key(change: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict(spoke_config("spoke1", **change))
    assert e.value.key == key, e.value


def test_missing_required_key() -> None:
    d = spoke_config("spoke1")
    del d["interface"]
    with pytest.raises(ConfigError, match="interface"):
        Config.from_dict(d)


def test_hub_with_nhs_is_out_of_scope() -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict(hub_config(nhs=[{"nbma": "172.16.0.9"}]))
    assert e.value.key == "nhs"
