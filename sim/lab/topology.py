"""The scenario's network, built from network namespaces: segment, clients, HAProxy, nodes, pods.

Real things built here (all inside ``slab-`` namespaces, with the addresses of
:mod:`sim.addresses`):

* **The segment**: one Linux bridge ``slab-br0`` in namespace ``slab-seg`` joins the clients,
  HAProxy and the nodes (``10.0.0.0/16``), as MetalLB L2 requires (M13).
* **Clients**: a few namespaces ``slab-client-K``, each holding many client addresses on its
  ``slab-eth0`` and its own real ARP cache (M10).
* **Nodes** ``slab-node-K``: forwarding on; NIC ``slab-eth0`` with the node IP; a default route
  via the segment's (absent) router ``10.0.0.1``, which Calico-style proxy ARP needs.
* **Pods** (Calico style, N2): a namespace per pod, a veth ``slab-eth0`` with the pod IP as /32
  and ``default via 169.254.1.1``; the node side ``slab-v-<pod>`` (Calico's ``cali*``) has no
  IPv4 address, a /32 route to the pod and proxy ARP, so the node answers 169.254.1.1.
* **Encapsulation** (C1): ``VXLAN``: device ``slab-vxlan`` (Calico's ``vxlan.calico``) with the
  tunnel IP as /32, static neighbour and FDB entries per remote node, and ``172.16.J.0/24 via
  172.16.J.0 onlink`` routes. ``None`` and the CrossSubnet modes (all nodes share one subnet):
  native routes ``172.16.J.0/24 via <node J IP>``; CrossSubnet still has the VXLAN device and
  its address, unused for same-subnet routes. The ``IPIP`` modes are built as VXLAN: this
  kernel has no IPIP (measured, TOOLCHAIN), and the MASQUERADE source is the tunnel device's
  address either way (N1); :attr:`LabTopology.notes` says so.

rp_filter is off everywhere (the host's default might be strict; Calico's routes are symmetric
here anyway). Nothing is created in the root namespace: each veth is created inside one lab
namespace with its peer placed straight into another.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from sim.addresses import APP_POD_IP, HAPROXY_IP, client_ip, node_ip, tunnel_ip
from sim.lab.netns import PREFIX, LabState, in_netns, ipr

__all__ = ["LabTopology", "PodSpec", "client_namespace_count", "node_mac", "vxlan_mac"]

SEG = PREFIX + "seg"
BRIDGE = PREFIX + "br0"
NIC = PREFIX + "eth0"
VXLAN = PREFIX + "vxlan"
HAPROXY_NS = PREFIX + "haproxy"
ROUTER_IP = "10.0.0.1"
"""The segment's default gateway: nobody holds it (there is no way out of the lab)."""
POD_GATEWAY = "169.254.1.1"
"""Calico's fake next hop for pods, answered by proxy ARP on the node side of the veth."""
VXLAN_ID = 4096
VXLAN_PORT = 4789
CLIENTS_PER_NAMESPACE = 32
MAX_CLIENT_NAMESPACES = 4


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One pod of the lab: its name, node (0-based index) and address."""

    name: str
    node: int
    ip: str

    @property
    def namespace(self) -> str:
        """The pod's namespace, ``slab-<name>``."""
        return PREFIX + self.name

    @property
    def node_link(self) -> str:
        """The node side of its veth, ``slab-v-<name>`` (Calico's ``cali*``)."""
        return f"{PREFIX}v-{self.name}"


def node_mac(index: int) -> str:
    """The NIC MAC of node ``index`` (locally administered, readable in captures)."""
    return f"02:00:0a:00:00:{11 + index:02x}"


def vxlan_mac(index: int) -> str:
    """The VXLAN device MAC of node ``index`` (Calico derives its own; any fixed MAC works)."""
    return f"66:00:00:00:00:{index + 1:02x}"


def client_namespace_count(clients: int) -> int:
    """How many client namespaces hold ``clients`` addresses (a few, each with many)."""
    return max(1, min(MAX_CLIENT_NAMESPACES, math.ceil(clients / CLIENTS_PER_NAMESPACE)))


@dataclass
class LabTopology:
    """The namespaces and links of one scenario; :meth:`build` creates them.

    Args:
        state: the state file every namespace is recorded in before it is created.
        nodes: number of nodes.
        pods: the gateway pods, then the app pod (``app-1`` on node-1, ``APP_POD_IP``).
        clients: number of client addresses.
        encapsulation: the scenario's Calico mode (C1).
        haproxy: whether to build HAProxy's host.
    """

    state: LabState
    nodes: int
    pods: Sequence[PodSpec]
    clients: int
    encapsulation: str
    haproxy: bool
    notes: list[str] = field(default_factory=list)
    client_ns: list[str] = field(default_factory=list)
    client_of: dict[str, str] = field(default_factory=dict)

    def node_ns(self, index: int) -> str:
        """Namespace of node ``index`` (0-based): ``slab-node-1`` ..."""
        return f"{PREFIX}node-{index + 1}"

    @property
    def vxlan(self) -> bool:
        """Whether the nodes get a VXLAN device (every mode but ``None``)."""
        return self.encapsulation != "None"

    @property
    def tunnel_routes(self) -> bool:
        """Whether pod routes to other nodes go through the tunnel (Always modes, C1)."""
        return self.encapsulation in ("VXLAN", "IPIP")

    def build(self) -> None:
        """Create everything, in dependency order."""
        if self.encapsulation.startswith("IPIP"):
            self.notes.append(
                f"encapsulation {self.encapsulation}: built as VXLAN (this kernel has no IPIP "
                "device; the MASQUERADE source is the tunnel device's address either way, N1)"
            )
        self.state.add_namespace(SEG)
        with ipr(SEG) as seg:
            seg.link("add", ifname=BRIDGE, kind="bridge")
            seg.link("set", index=seg.link_lookup(ifname=BRIDGE)[0], state="up")
        self._up_loopback(SEG)
        count = client_namespace_count(self.clients)
        per = math.ceil(self.clients / count)
        for k in range(count):
            name = f"{PREFIX}client-{k + 1}"
            ips = [client_ip(i) for i in range(k * per, min(self.clients, (k + 1) * per))]
            self._host(name, f"c{k + 1}", ips, f"02:00:0a:01:00:{k + 1:02x}")
            self.client_ns.append(name)
            self.client_of.update(dict.fromkeys(ips, name))
        if self.haproxy:
            self._host(HAPROXY_NS, "hap", [HAPROXY_IP], "02:00:0a:00:00:05")
        for i in range(self.nodes):
            self._host(self.node_ns(i), f"n{i + 1}", [node_ip(i)], node_mac(i))
            self._sysctl(self.node_ns(i), {"net/ipv4/ip_forward": "1"})
        if self.vxlan:
            for i in range(self.nodes):
                self._vxlan(i)
        for i in range(self.nodes):
            self._pod_routes(i)
        for pod in self.pods:
            self._pod(pod)

    # ------------------------------------------------------------------ pieces

    def _up_loopback(self, name: str) -> None:
        with ipr(name) as h:
            h.link("set", index=h.link_lookup(ifname="lo")[0], state="up")
        self._sysctl(
            name, {"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"}
        )

    def _sysctl(self, name: str, values: dict[str, str]) -> None:
        with in_netns(name):
            for key, value in values.items():
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(value)

    def _veth(self, here: str, link: str, there: str, peer: str, mac: str | None) -> None:
        """A veth pair created from inside ``here``, its peer placed straight into ``there``."""
        fd = os.open(f"/run/netns/{there}", os.O_RDONLY)
        try:
            with ipr(here) as h:
                spec: dict[str, object] = {"ifname": peer, "net_ns_fd": fd}
                if mac:
                    spec["address"] = mac
                h.link("add", ifname=link, kind="veth", peer=spec)
                h.link("set", index=h.link_lookup(ifname=link)[0], state="up")
        finally:
            os.close(fd)

    def _host(self, name: str, short: str, ips: Sequence[str], mac: str) -> None:
        """A host on the segment: namespace ``name`` with ``slab-eth0`` holding ``ips``/16."""
        self.state.add_namespace(name)
        self._up_loopback(name)
        port = f"{PREFIX}p-{short}"
        self._veth(SEG, port, name, NIC, mac)
        with ipr(SEG) as seg:
            seg.link(
                "set",
                index=seg.link_lookup(ifname=port)[0],
                master=seg.link_lookup(ifname=BRIDGE)[0],
            )
        with ipr(name) as h:
            idx = h.link_lookup(ifname=NIC)[0]
            for ip in ips:
                h.addr("add", index=idx, address=ip, prefixlen=16)
            h.link("set", index=idx, state="up")
            h.route("add", dst="default", gateway=ROUTER_IP)

    def _vxlan(self, i: int) -> None:
        """Calico's VXLAN device on node ``i``: static neighbours and FDB entries, no learning."""
        name = self.node_ns(i)
        with ipr(name) as h:
            nic = h.link_lookup(ifname=NIC)[0]
            h.link(
                "add",
                ifname=VXLAN,
                kind="vxlan",
                address=vxlan_mac(i),
                vxlan_id=VXLAN_ID,
                vxlan_port=VXLAN_PORT,
                vxlan_local=node_ip(i),
                vxlan_link=nic,
                vxlan_learning=0,
            )
            vx = h.link_lookup(ifname=VXLAN)[0]
            h.addr("add", index=vx, address=tunnel_ip(i), prefixlen=32)
            h.link("set", index=vx, state="up")
            for j in range(self.nodes):
                if j == i:
                    continue
                h.neigh("add", dst=tunnel_ip(j), lladdr=vxlan_mac(j), ifindex=vx, state="permanent")
                h.fdb("add", ifindex=vx, lladdr=vxlan_mac(j), dst=node_ip(j))

    def _pod_routes(self, i: int) -> None:
        """Routes to the other nodes' pod blocks: through the tunnel, or native (C1)."""
        with ipr(self.node_ns(i)) as h:
            for j in range(self.nodes):
                if j == i:
                    continue
                block = f"172.16.{j + 1}.0"
                if self.tunnel_routes:
                    vx = h.link_lookup(ifname=VXLAN)[0]
                    h.route(
                        "add", dst=block, dst_len=24, gateway=tunnel_ip(j), oif=vx, flags=4
                    )  # RTNH_F_ONLINK
                else:
                    h.route("add", dst=block, dst_len=24, gateway=node_ip(j))

    def _pod(self, pod: PodSpec) -> None:
        """A Calico-style pod: /32, default via 169.254.1.1, proxy ARP on the node side."""
        node = self.node_ns(pod.node)
        self.state.add_namespace(pod.namespace)
        self._up_loopback(pod.namespace)
        self._veth(node, pod.node_link, pod.namespace, NIC, None)
        self._sysctl(node, {f"net/ipv4/conf/{pod.node_link}/proxy_arp": "1"})
        with ipr(node) as h:
            h.route("add", dst=pod.ip, dst_len=32, oif=h.link_lookup(ifname=pod.node_link)[0])
        with ipr(pod.namespace) as h:
            idx = h.link_lookup(ifname=NIC)[0]
            h.addr("add", index=idx, address=pod.ip, prefixlen=32)
            h.link("set", index=idx, state="up")
            h.route("add", dst=POD_GATEWAY, dst_len=32, oif=idx, scope=253)  # scope link
            h.route("add", dst="default", gateway=POD_GATEWAY, oif=idx)

    # ------------------------------------------------------------- run time

    def set_vip(self, node: int, vip: str, present: bool) -> None:
        """Add (or remove) the VIP as a /32 on node ``node``'s NIC: then it answers ARP."""
        with ipr(self.node_ns(node)) as h:
            idx = h.link_lookup(ifname=NIC)[0]
            has = any(a.get_attr("IFA_ADDRESS") == vip for a in h.get_addr(index=idx, family=2))
            if present and not has:
                h.addr("add", index=idx, address=vip, prefixlen=32)
            elif not present and has:
                h.addr("del", index=idx, address=vip, prefixlen=32)

    def set_node_links(self, node: int, up: bool) -> None:
        """Take every link of node ``node`` down (power off: no RST, nothing answers) or up."""
        with ipr(self.node_ns(node)) as h:
            for link in h.get_links():
                name = link.get_attr("IFLA_IFNAME")
                if name.startswith(PREFIX):
                    h.link("set", index=link["index"], state="up" if up else "down")

    def devices(self) -> list[tuple[str, str]]:
        """``(namespace, link)`` of every interface worth a capture (one per hop)."""
        out = [(ns, NIC) for ns in self.client_ns]
        if self.haproxy:
            out.append((HAPROXY_NS, NIC))
        for i in range(self.nodes):
            out.append((self.node_ns(i), NIC))
            if self.vxlan:
                out.append((self.node_ns(i), VXLAN))
        out.extend((pod.namespace, NIC) for pod in self.pods)
        return out


def app_pod(nodes: int) -> PodSpec:
    """The application pod (with its sidecar) on node-1 at :data:`APP_POD_IP`."""
    del nodes
    return PodSpec("app-1", 0, APP_POD_IP)
