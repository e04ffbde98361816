"""Captures: pcap reading, a merged timeline across lab nodes, and expect_* helpers."""

from .expect import ExpectationFailed, expect, expect_all, expect_none, expect_reply
from .timeline import Event, Pair, Timeline, matches

__all__ = ["Event", "ExpectationFailed", "Pair", "Timeline", "expect", "expect_all", "expect_none",
           "expect_reply", "matches"]
