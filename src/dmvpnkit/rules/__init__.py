"""Passive rules: one function per observable requirement, judged on captured packets.

The suite's observe cases call them on their lab's capture (`enforce`, which raises
ExpectationFailed like the `expect*` helpers); `dmvpnkit audit` runs every one of
`REGISTRY` on captures taken anywhere, per station. Each rule is a `Rule` (name,
spec, check); calling it gives a `Verdict` (PASS, FAIL or SKIP with the reason) with
the frames it rests on.

    from dmvpnkit import rules
    rules.enforce(rules.header.checksum, sent)                          # in a case
    v = rules.REGISTRY["header-checksum"](tl, rules.Context(station="192.0.2.1"))
"""

from __future__ import annotations

from . import exchanges, header, indications, ipsec, nat, registration
from .base import (
           FAIL,
           PASS,
           REGISTRY,
           SKIP,
           Context,
           Rule,
           Spec,
           Verdict,
           enforce,
           view,
)

__all__ = ["FAIL", "PASS", "REGISTRY", "SKIP", "Context", "Rule", "Spec", "Verdict", "enforce", "exchanges",
           "header", "indications", "ipsec", "nat", "registration", "view"]
