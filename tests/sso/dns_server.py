"""A real DNS server for the tests: UDP on 127.0.0.1, answering TXT questions from a dict.

Built with dnspython's `dns.message` (no other dependency): it parses each query, answers the
TXT records of `records[name]` (NXDOMAIN for an unknown name, an empty answer for another
type), and lives as long as the `dns_server()` context.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class TxtZone(asyncio.DatagramProtocol):
    """The server's protocol: `records` maps a name (any case, trailing dot or not) to its TXT
    values; tests change it while the server runs."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.questions: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def publish(self, name: str, *values: str) -> None:
        self.records.setdefault(name.lower().rstrip("."), []).extend(values)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().lower().rstrip(".")
            self.questions.append(name)
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                quoted = ['"' + value.replace('"', '\\"') + '"' for value in values]
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 300, "IN", "TXT", quoted)
                )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def dns_server() -> AsyncIterator[tuple[TxtZone, str]]:
    """(zone, "127.0.0.1:port"): a nameserver for `JALON_DNS_RESOLVER`, until the block ends."""
    loop = asyncio.get_running_loop()
    transport, zone = await loop.create_datagram_endpoint(TxtZone, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        yield zone, f"127.0.0.1:{port}"
    finally:
        transport.close()
