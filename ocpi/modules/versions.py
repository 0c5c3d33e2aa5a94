"""OCPI 2.2.1 Versions (version_information_endpoint.asciidoc): the versions a party
speaks and the endpoints of each."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from ocpi.modules.common import URL, OcpiModel, String10, String64


class Version(OcpiModel):
    version: String10
    url: URL


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Endpoint(OcpiModel):
    identifier: String64
    role: InterfaceRole | None = None  # absent in 2.1.1
    url: URL


class VersionDetails(OcpiModel):
    version: String10
    endpoints: list[Endpoint] = Field(min_length=1)
