"""Which IMAP servers a mailbox may name, checked by the connection itself.

A name is resolved once; every address it resolves to must be public, and the connection goes
to those very addresses (TLS is still verified against the name). Resolving again to connect
would let a resolver answer a public address to the check and 127.0.0.1 to the connection.
A name that does not resolve is refused too: whatever cannot be checked is not used.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# One message for a host refused, unknown, closed or silent, wherever it shows (form, last
# error): a different answer for each would make the worker a port scanner.
UNREACHABLE = (
    "Vigil could not reach this IMAP server: check its name and port. Servers on a private "
    "network or on this machine are not allowed."
)
MAX_NAME = 253  # RFC 1035, in its ASCII (IDNA) form
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A top-level label is never numeric, so `127.0.0.1.` or `0x7f000001` is not a name (the C
# resolver would read both as 127.0.0.1).
TOP_LABEL = re.compile(r"[a-z][a-z0-9-]*")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class Unreachable(OSError):
    """The host is not a name or address, does not resolve, resolves to an address that is
    not public, or did not answer: one error for all."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE)


@dataclass(frozen=True)
class Target:
    """One checked address to connect to, as getaddrinfo gave it."""

    family: int
    sockaddr: tuple


def normalized(host: str) -> str | None:
    """`host` as an IP address or an ASCII (IDNA) lowercase host name, or None if it is
    neither. Bounded: at most MAX_NAME characters are looked at."""
    if not host or len(host) > MAX_NAME or "%" in host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(name) > MAX_NAME or not all(LABEL.fullmatch(label) for label in labels):
        return None
    return name if TOP_LABEL.fullmatch(labels[-1]) else None


def is_public(address: Address) -> bool:
    """Whether `address` is globally routable, and so is every IPv4 address it embeds
    (IPv4-mapped and -compatible, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv6Address) and (
        address.scope_id or address.is_site_local or address in LOCAL_NAT64
    ):
        return False
    special = (
        address.is_multicast,
        address.is_reserved,
        address.is_loopback,
        address.is_link_local,
        address.is_private,
        address.is_unspecified,
    )
    if not address.is_global or any(special):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return all(is_public(v4) for v4 in _embedded(address))
    return True


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [v4 for v4 in (address.ipv4_mapped, address.sixtofour) if v4 is not None]
    found += address.teredo or ()
    if address in NAT64 or address in IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def resolve(host: str, port: int, *, private_allowed: bool = False) -> list[Target]:
    """The addresses to connect to for `host`, from one lookup: Unreachable if the host is
    malformed or unknown, or (unless `private_allowed`) any address is not public."""
    name = normalized(host)
    if name is None:
        raise Unreachable
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        raise Unreachable from None
    targets = list(dict.fromkeys(Target(info[0], info[4]) for info in infos))
    if not targets:
        raise Unreachable
    if not private_allowed:
        for target in targets:
            try:
                address = ipaddress.ip_address(target.sockaddr[0])
            except ValueError:
                raise Unreachable from None
            if not is_public(address):
                raise Unreachable
    return targets


def connect(targets: list[Target], timeout: float | None) -> socket.socket:
    """A TCP connection to the first of `targets` that accepts, by address: no lookup here."""
    failure: OSError = Unreachable()
    for target in targets:
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(target.sockaddr)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure
