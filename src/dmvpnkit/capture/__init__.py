"""Captures: pcap reading, a merged timeline across lab nodes (ESP opened with the
keys of `ip xfrm state`), and expect_* helpers."""

from .esp import SA, EspError, Keyring, XfrmError, decrypt, parse_xfrm
from .expect import ExpectationFailed, expect, expect_all, expect_none, expect_reply
from .timeline import Event, Pair, Timeline, matches

__all__ = ["SA", "EspError", "Event", "ExpectationFailed", "Keyring", "Pair", "Timeline", "XfrmError",
           "decrypt", "expect", "expect_all", "expect_none", "expect_reply", "matches", "parse_xfrm"]
