"""Push targets are URLs users hand us, which our worker then calls: only
public HTTPS hosts, checked at registration and again when sending (a name
can resolve elsewhere later), and no redirects anywhere.

Not covered: a name that resolves to a public address for this check and to
a private one for the connection right after (DNS rebinding); the worker's
host should have no route to what must stay private."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from messaging.push.exceptions import InvalidTarget


def check_url(url: str, *, field: str, resolve: bool) -> None:
    """Refuse anything but https to a public address (http and private
    addresses only with PUSH_ALLOW_PRIVATE_TARGETS, for local receivers). A
    literal address is checked always; a name only with ``resolve`` (when
    sending: registering waits for no DNS)."""
    parts = urlsplit(url)
    allow_private = settings.PUSH_ALLOW_PRIVATE_TARGETS
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise InvalidTarget("The URL must be https.", field=field)
    try:
        port = parts.port or 443
    except ValueError:
        raise InvalidTarget("The URL's port is not a port.", field=field) from None
    if not parts.hostname or parts.username or parts.password:
        raise InvalidTarget("The URL must name a host, without credentials.", field=field)
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = {str(literal)}
    elif not resolve:
        return
    else:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
        except (socket.gaierror, UnicodeError):
            raise InvalidTarget("The URL's host does not resolve.", field=field) from None
    if not all(_public(ipaddress.ip_address(address.split("%", 1)[0])) for address in addresses):
        raise InvalidTarget("The URL's host is not a public address.", field=field)


# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, Teredo): the
# inner one decides, since that is where the packets end up.
_CARRIERS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("2002::/16"), ipaddress.ip_network("2001::/32"))


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _public(ip.ipv4_mapped)
        if ip in _CARRIERS[0]:
            return _public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _CARRIERS[1] and ip.sixtofour is not None:
            return _public(ip.sixtofour)
        if ip in _CARRIERS[2] and ip.teredo is not None:
            return _public(ip.teredo[1])
    return ip.is_global
