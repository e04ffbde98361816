"""dmvpnkit.nhrpd: our own NHRP node. A sans-IO engine (events in, actions out, an
injected clock) with its own codec, independent of ``dmvpnkit.nhrp``; the kernel
driver (mGRE via netlink, NFLOG, control socket) wraps it.

Nothing here imports the rest of dmvpnkit.
"""

from dmvpnkit.nhrpd.codec import CodecError, EncodeError, Packet, decode, encode
from dmvpnkit.nhrpd.config import Config, ConfigError
from dmvpnkit.nhrpd.engine import Engine
from dmvpnkit.nhrpd.events import (
    Action,
    AddRoute,
    DelRoute,
    Event,
    FlushRoutes,
    Hairpin,
    Log,
    MapNeighbor,
    Multicast,
    NbmaChanged,
    PacketIn,
    Resolve,
    Routes,
    Send,
    SendData,
    Start,
    Stop,
    UnmapNeighbor,
)
from dmvpnkit.nhrpd.faults import Fault

__all__ = [
    "Action", "AddRoute", "CodecError", "Config", "ConfigError", "DelRoute", "EncodeError",
    "Engine", "Event", "Fault", "FlushRoutes", "Hairpin", "Log", "MapNeighbor", "Multicast", "NbmaChanged",
    "Packet", "PacketIn", "Resolve", "Routes", "Send", "SendData", "Start", "Stop", "UnmapNeighbor", "decode", "encode",
]
