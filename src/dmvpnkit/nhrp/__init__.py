"""NHRP (RFC 2332 + DMVPN): a scapy layer, a typed model with a fast decoder,
builders and deliberate malformations.

The model (``decode``, ``Message`` ...) loads without scapy; the layer and builder
names load scapy on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dmvpnkit.nhrp.model import Cie, DecodeError, Extension, Message, Op, decode, from_layer

if TYPE_CHECKING:
    from dmvpnkit.nhrp.build import (
        Malformation,
        cie,
        encapsulate,
        error_indication,
        malform,
        purge_reply,
        purge_request,
        registration_reply,
        registration_request,
        resolution_reply,
        resolution_request,
        traffic_indication,
    )
    from dmvpnkit.nhrp.layer import (
        EXPERIMENTAL_EXT_TYPE,
        EXTENSION_CLASSES,
        NHRP,
        NHRPCIE,
        NHRPErrorIndication,
        NHRPExtAuthentication,
        NHRPExtEnd,
        NHRPExtension,
        NHRPExtForwardTransit,
        NHRPExtNATAddress,
        NHRPExtResponderAddress,
        NHRPExtReverseTransit,
        NHRPExtVendorPrivate,
        NHRPPurgeReply,
        NHRPPurgeRequest,
        NHRPRegistrationReply,
        NHRPRegistrationRequest,
        NHRPResolutionReply,
        NHRPResolutionRequest,
        NHRPTrafficIndication,
    )

__all__ = [
    "Cie", "DecodeError", "Extension", "Message", "Op", "decode", "from_layer",
    # dmvpnkit.nhrp.build
    "Malformation", "cie", "encapsulate", "error_indication", "malform", "purge_reply",
    "purge_request", "registration_reply", "registration_request", "resolution_reply",
    "resolution_request", "traffic_indication",
    # dmvpnkit.nhrp.layer
    "EXPERIMENTAL_EXT_TYPE", "EXTENSION_CLASSES", "NHRP", "NHRPCIE", "NHRPErrorIndication",
    "NHRPExtAuthentication", "NHRPExtEnd", "NHRPExtension", "NHRPExtForwardTransit", "NHRPExtNATAddress",
    "NHRPExtResponderAddress", "NHRPExtReverseTransit", "NHRPExtVendorPrivate",
    "NHRPPurgeReply", "NHRPPurgeRequest", "NHRPRegistrationReply", "NHRPRegistrationRequest",
    "NHRPResolutionReply", "NHRPResolutionRequest", "NHRPTrafficIndication",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in ("dmvpnkit.nhrp.build", "dmvpnkit.nhrp.layer"):
            found = getattr(importlib.import_module(module), name, None)
            if found is not None:
                return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
