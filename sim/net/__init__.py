"""The network elements, one module per real component, each named after it.

* :mod:`sim.net.clients`: the external HTTP clients on the L2 segment and their ARP caches;
* :mod:`sim.net.haproxy`: the external HAProxy (frontend, backend, health checks);
* :mod:`sim.net.memberlist`: hashicorp/memberlist, the speakers' failure detector;
* :mod:`sim.net.metallb`: MetalLB's layer-2 speaker (election, gratuitous ARP);
* :mod:`sim.net.node`: a Kubernetes node and its gateway pods;
* :mod:`sim.net.kube_proxy`: kube-proxy in iptables mode;
* :mod:`sim.net.gateway`: the Istio ingress gateway's Envoy;
* :mod:`sim.net.sidecar`: the app pod's Istio sidecar;
* :mod:`sim.net.http`: the HTTP/1.1 bytes clients send and servers read.

Each module's docstring says what it models, which facts (IDs from the docs' fact tables) it
relies on, and what it leaves out. :mod:`sim.topology` wires them together.
"""
