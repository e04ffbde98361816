"""The netns backend, and the named-namespace machinery the other backends reach
their nodes through (a Mininet host's or a container's namespace, once named)."""

from .backend import NetnsBackend, set_netem
from .namespaces import (NETNS_DIR, create_netns, delete_netns, inside, kill_all, list_netns, name_netns,
                         ns_prefix, pids_in, reap, running_labs)
from .node import RUN_ROOT, NamespaceNode

__all__ = ["NetnsBackend", "NamespaceNode", "RUN_ROOT", "set_netem", "NETNS_DIR", "create_netns", "delete_netns",
           "inside", "kill_all", "list_netns", "name_netns", "ns_prefix", "pids_in", "reap", "running_labs"]
