"""The shim's A/B split (shim/split.c), computed from the client's side.

arm(client_addr, client_port, server_addr, server_port, percent) is the arm the
shim in the server puts that connection in: the server's local endpoint is the
client's peer. The hash: FNV-1a 64 over the local then the peer endpoint
(address bytes, port in network order; an IPv4-mapped IPv6 address as IPv4),
then splitmix64's finalizer; the linger arm when hash % 100 < percent.
"""

import ipaddress
import struct

MASK = (1 << 64) - 1


def _fnv(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & MASK
    return h


def _endpoint(h, addr, port):
    ip = ipaddress.ip_address(addr)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return _fnv(_fnv(h, ip.packed), struct.pack("!H", port))


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
    return z ^ (z >> 31)


def connection_hash(local_addr, local_port, peer_addr, peer_port):
    """The hash as the shim computes it on the side whose local endpoint is given first."""
    return _mix(_endpoint(_endpoint(0xcbf29ce484222325, local_addr, local_port),
                          peer_addr, peer_port))


def server_arm(client_addr, client_port, server_addr, server_port, percent):
    h = connection_hash(server_addr, server_port, client_addr, client_port)
    return "linger" if h % 100 < percent else "control"
