"""Captures: pcap reading, a merged timeline across lab nodes (ESP opened with the
keys of `ip xfrm state`), and expect_* helpers."""

from .esp import SA, EspError, Keyring, XfrmError, decrypt, parse_xfrm
from .expect import ExpectationFailed, expect, expect_all, expect_none, expect_reply
from .timeline import BadMatch, Event, Pair, Timeline, check_match, matches

__all__ = ["SA", "BadMatch", "EspError", "Event", "ExpectationFailed", "Keyring", "Pair", "Timeline", "XfrmError",
           "check_match", "decrypt", "expect", "expect_all", "expect_none", "expect_reply", "matches", "parse_xfrm"]
