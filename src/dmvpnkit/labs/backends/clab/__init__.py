"""The containerlab backend (`--backend clab`) and the containerlab export
(`dmvpnkit lab export --format clab`).

- `export()` writes a topology as a containerlab lab: every node `kind: linux`,
  `restart-policy: "no"` (the linux kind's default, `always`, restarts a container
  without its data links), `network-mode: none` with `mgmt.skip-when-unused` (no
  management bridge or iptables rules in the root namespace unless `mgmt=True`),
  one veth per topology link with the topology's interface names (containerlab's
  linux kind accepts any Linux name; eth0 is renamed only while the management
  network holds it, the mapping kept in `dmvpnkit.ifname.*` labels).
- What a DMVPN node's container holds (image, files, commands, binds) is its
  implementation's container part (`implementations.ContainerPlan`); an implementation
  without one cannot be exported. Images: FRR nodes `quay.io/frrouting/frr:8.4.2`
  (Debian 12's FRR is 8.4.4, which quay.io does not have; 8.4.2's nhrpd is the same
  code); dmvpnkit nhrpd nodes and the router, NAT boxes, LAN hosts and peers Debian 12
  slim images built from `containers/nhrpd/Dockerfile`:
      docker build -f containers/nhrpd/Dockerfile -t dmvpnkit/nhrpd:0.1.0 .
      docker build -f containers/nhrpd/Dockerfile --target linux -t dmvpnkit/linux:0.1.0 .
  The official FRR image has no iptables, which a standalone FRR hub's NFLOG rules
  need: `--target frr` builds it with iptables, for `--image frr=IMAGE`. (In harness mode
  the harness sets those rules itself with its own iptables.)
- `ClabBackend`: `build()` exports in harness mode into `<lab dir>/clab/` and deploys
  it with containerlab (through pytest-clab's ClabRunner); nodes are `ClabNode`s,
  reached through their named namespaces (`clab-<lab>-<node>`) and `docker exec`. Images can be
  chosen with DMVPNKIT_CLAB_<IMPLEMENTATION>_IMAGE (and DMVPNKIT_CLAB_LINUX_IMAGE).
- IPsec on clab is out of scope: strongSwan's charon needs a private /run per node
  (`popen(private_run=...)`), which `docker exec` cannot give, and the images carry no
  strongSwan. Use the netns or mininet backend for `--ipsec`.
"""

from .backend import STATE_DIR, ClabBackend
from .check import check_doc, check_export
from .export import DEFAULT_LINUX_IMAGE, IDLE, PREFIX, ExportError, export, iface_names, image_env, lab_name, node_id
from .node import ClabNode

__all__ = ["DEFAULT_LINUX_IMAGE", "IDLE", "PREFIX", "STATE_DIR", "ClabBackend", "ClabNode", "ExportError", "check_doc", "check_export", "export",
           "iface_names", "image_env", "lab_name", "node_id"]
