"""Deliberate non-conformance, one switch per kind of bug the conformance suite must
catch (its mutation matrix: every case fails against at least one of these)."""

from __future__ import annotations

import enum


class Fault(enum.Enum):
    """Each value is the name a config's ``faults`` list may use (the member name works too)."""

    SKIP_TRAFFIC_INDICATION = "skip-traffic-indication"  # hub never sends a Traffic Indication for hairpinned traffic
    IGNORE_TRAFFIC_INDICATION = "ignore-traffic-indication"  # spoke never acts on a Traffic Indication
    BAD_CHECKSUM = "bad-checksum"                  # every sent packet carries a wrong ar$chksum
    ACCEPT_BAD_CHECKSUM = "accept-bad-checksum"    # received packets with a failed checksum are processed
    ACCEPT_ANY_VERSION = "accept-any-version"      # ar$op.version other than 1 is processed as version 1
    IGNORE_HOLDTIME = "ignore-holdtime"            # cache entries and shortcuts never expire
    WRONG_REQUEST_ID = "wrong-request-id"          # replies echo the request's ID plus one
    NO_ERROR_INDICATION = "no-error-indication"    # every Error Indication is silently left unsent
    DROP_NAT_EXTENSION = "drop-nat-extension"      # no NAT extension (type 9) in requests or replies
    BIND_CLAIMED_NBMA = "bind-claimed-nbma"        # hub binds the NBMA address a spoke claims, not the one seen
    REGISTER_UNIQUE = "register-unique"            # registrations set the U bit although `unique` is off
    NO_RENEWAL = "no-renewal"                      # a successful registration is never refreshed
    NO_PURGE_REPLY = "no-purge-reply"              # Purge Requests are acted on but never answered
    IGNORE_PURGE = "ignore-purge"                  # Purge Requests are neither acted on nor answered (as FRR 8.4)
    NO_HOPCNT_DECREMENT = "no-hopcnt-decrement"    # a transit NHS forwards with the hop count unchanged
    NO_TRANSIT_RECORD = "no-transit-record"        # a transit NHS does not append itself to the transit records
    ACCEPT_UNIQUE_CONFLICT = "accept-unique-conflict"  # a unique binding is overwritten instead of NAKed with 14
    NO_RESPONDER_EXTENSION = "no-responder-extension"  # replies leave the Responder Address extension empty
    DROP_UNKNOWN_EXTENSION = "drop-unknown-extension"  # unknown non-compulsory extensions are not returned in replies
    ZERO_HOPCNT = "zero-hopcnt"                    # every packet is originated with ar$hopcnt 0
    NEW_REQUEST_ID_ON_RESEND = "new-request-id-on-resend"  # an unanswered request is resent with a fresh ID
    NO_REGISTRATION_RETRY = "no-registration-retry"  # an unanswered Registration Request waits for the refresh
    IMPATIENT_RESOLUTION = "impatient-resolution"  # a Resolution Reply over 100 ms after its request is dropped
    SHORTCUT_IGNORES_HOLDTIME = "shortcut-ignores-holdtime"  # shortcuts (and their far end) never expire
    MULTICAST_FIRST_ONLY = "multicast-first-only"  # multicast is copied to the first destination only
    MULTICAST_BATCHED = "multicast-batched"        # multicast is read from NFLOG in the kernel's 1 s batches (as FRR 8.4)
    SHORTCUT_HOST_ROUTE = "shortcut-host-route"    # a shortcut's kernel route: the resolved address, not the reply's prefix
    NO_IPV6_RESOLUTION = "no-ipv6-resolution"      # a spoke never resolves an IPv6 destination (its IPv6 traffic stays on the hub)
    # A spoke resolves the network address of the indicated destination's /24 (or /64),
    # the hub's rate-limit aggregate, not the destination: the shortcut still covers it.
    RESOLVE_INDICATED_NETWORK = "resolve-indicated-network"
    REPLY_CIE_WITHOUT_NBMA = "reply-cie-without-nbma"  # a Resolution Reply's CIE: no Client NBMA Address (only the Responder Address has it)
    # Once: only the first Registration Reply a hub sends (per daemon run) has the defect;
    # the spoke's 1 s resend (or its NAK backoff) recovers, so the lab still converges.
    BAD_CHECKSUM_ONCE = "bad-checksum-once"        # the first Registration Reply carries a wrong ar$chksum
    GARBLED_ONCE = "garbled-once"                  # the first Registration Reply's End claims 4 octets past ar$pktsz
    PKTSZ_PADDING_ONCE = "pktsz-padding-once"      # the first Registration Reply has 4 octets after ar$pktsz
    WRONG_VERSION_ONCE = "wrong-version-once"      # the first Registration Reply has ar$op.version 2
    WRONG_AFN_ONCE = "wrong-afn-once"              # the first Registration Reply has ar$afn 2 (IPv6), not 1
    WRONG_PRO_TYPE_ONCE = "wrong-pro-type-once"    # the first Registration Reply names the other family's ar$pro.type
    ZERO_HOPCNT_ONCE = "zero-hopcnt-once"          # the first Registration Reply has ar$hopcnt 0
    REFUSE_REGISTRATION_ONCE = "refuse-registration-once"  # the first Registration Reply is a NAK (code 5)
    REPLY_FROM_TUNNEL_ADDRESS_ONCE = "reply-from-tunnel-address-once"  # outer source: the tunnel, not NBMA, address
    # First request: only the first Registration Request a spoke sends (per daemon run, to
    # its first NHS, resent unchanged until answered) has the defect; the NHS answers it, and
    # where the spoke drops that answer its resend a second later is the request as it should be.
    ZERO_HOLDTIME_ONCE = "zero-holdtime-once"      # the first Registration Request's CIE holds Holding Time 0
    NBMA_AS_PROTOCOL_ONCE = "nbma-as-protocol-once"  # the first Registration Request's ar$src_proto: the NBMA address
    KEEP_FIRST_NBMA = "keep-first-nbma"            # hub keeps a protocol address at the first NBMA address it bound
    STALE_SOURCE_NBMA = "stale-source-nbma"        # a renumbered spoke registers with its configured NBMA address as ar$src_nbma
    REPLY_TO_CLAIMED_NBMA = "reply-to-claimed-nbma"  # a NAT-aware registration is answered at its claimed NBMA address
    REGISTER_FIRST_NHS_ONLY = "register-first-nhs-only"  # a spoke never registers with its second and later NHSs
    ACCEPT_EXTOFF_PAST_PKTSZ = "accept-extoff-past-pktsz"  # an ar$extoff past ar$pktsz is read as "no extensions"
    RUNT_PREFIXES_NEXT = "runt-prefixes-next"      # a runt is kept and put before its sender's next packet
    CACHE_UNSOLICITED_REPLY = "cache-unsolicited-reply"  # an unmatched Resolution Reply's CIE is bound (and still errored)
    TRAFFIC_INDICATION_FROM_TUNNEL_ADDRESS = "traffic-indication-from-tunnel-address"  # outer source: the tunnel address
    TRAFFIC_INDICATION_ZERO_SOURCE = "traffic-indication-zero-source"  # the carried packet's source address zeroed
    # The first Registration Reply a hub sends while another spoke is bound goes to that
    # spoke's NBMA address (which drops it); the registering spoke's resend recovers.
    REPLY_TO_ANOTHER_SPOKE_ONCE = "reply-to-another-spoke-once"
    # Restart: the daemon leaves a marker beside its control socket; started again with
    # one there (the lab's ``restart_daemon``), it has these defects.
    TRUST_SAVED_REGISTRATION = "trust-saved-registration"  # a restarted spoke never registers again
    FLUSH_TUNNEL_ROUTES_ON_RESTART = "flush-tunnel-routes-on-restart"  # a restarted daemon deletes every static route on the tunnel
    # IPsec (only with an `ipsec` config; the lab's `--ipsec`):
    IPSEC_KEEP_SA = "ipsec-keep-sa"                # spoke-to-spoke SAs outlive their shortcut (as trap policies do)
    IPSEC_CLEARTEXT_FIRST = "ipsec-cleartext-first"  # NHRP leaves while IKE still negotiates, and no drop shunt
    IPSEC_NO_SHORTCUT_SA = "ipsec-no-shortcut-sa"  # a shortcut is installed without bringing up an SA for it
    # A spoke's first Registration Request (and its resends until answered) and a hub's
    # first Registration Reply go before any SA, in the clear; nothing drops unprotected GRE.
    IPSEC_REGISTER_IN_CLEAR_ONCE = "ipsec-register-in-clear-once"
    # At a hub, an IKE SA going down, a failed attempt included, makes it terminate every
    # other SA: it tears down the DMVPN's connection, not the peer's, so one spoke failing
    # IKE takes the others' SAs down with it.
    IPSEC_DOWN_DROPS_CONNECTION = "ipsec-down-drops-connection"

    def acts(self, ipsec: bool) -> bool:
        """Whether the switch can show on the wire of a lab with (or without) `--ipsec`.
        The ipsec-* switches act only with it. reply-from-tunnel-address-once never does:
        nhrpd's fail-closed rule drops its spoiled reply, GRE that no ESP policy covers,
        before the wire, and the spoke's resend gets the good one."""
        if self.value.startswith("ipsec-"):
            return ipsec
        return not (ipsec and self is Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE)

    @classmethod
    def parse(cls, name: str) -> Fault:
        """``skip-traffic-indication``, ``SKIP_TRAFFIC_INDICATION`` or ``skip_traffic_indication``."""
        key = name.strip().replace("-", "_").upper()
        try:
            return cls[key]
        except KeyError:
            known = ", ".join(f.value for f in cls)
            raise ValueError(f"unknown fault {name!r}; known: {known}") from None
