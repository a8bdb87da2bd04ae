"""What the hosts' TCP stacks (Linux) do with a SYN that gets no answer.

Real component modelled: the Linux kernel's connection setup on every client, on HAProxy and on
the in-cluster caller pods (T1): the first SYN, then retransmissions with an initial RTO of 1 s
that doubles (RFC 6298 §2), ``tcp_syn_retries`` 6, so SYNs leave 0, 1, 3, 7, 15, 31 and 63 s
after the first and the kernel gives up after about 127 s. Applications cap it with their own
connect timeout (``Scenario.client_timeout_s``; HAProxy's ``timeout connect``). A retransmitted
SYN that finds a live path (a gratuitous ARP moved the sender's entry, an endpoint came back)
connects late instead of failing.

Left out: SYN-ACK loss and retransmission by the server, ``tcp_syn_linear_timeouts``, RTO
values learnt from earlier connections, TCP Fast Open.
"""

from __future__ import annotations

__all__ = ["SYN_OFFSETS_S", "syn_retransmissions"]

SYN_OFFSETS_S = (0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0)
"""When Linux sends the SYNs of one connection attempt, seconds after the first (T1)."""


def syn_retransmissions(within_s: float) -> tuple[float, ...]:
    """The SYN send times (seconds after the first) of one attempt that gets no answer, before
    ``within_s`` (the application's connect timeout)."""
    return tuple(o for o in SYN_OFFSETS_S if o < within_s)
