"""OCPI 2.2.1 Credentials (credentials.asciidoc): the token, versions URL and roles two
parties exchange when they register."""

from __future__ import annotations

from pydantic import Field, field_validator

from ocpi.modules.common import URL, CiString2, CiString3, OcpiModel, Role, String64
from ocpi.modules.locations import BusinessDetails


class CredentialsRole(OcpiModel):
    role: Role
    business_details: BusinessDetails
    party_id: CiString3
    country_code: CiString2


class Credentials(OcpiModel):
    token: String64
    url: URL
    roles: list[CredentialsRole] = Field(min_length=1)

    @field_validator("token")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value or not all(0x21 <= ord(ch) <= 0x7E for ch in value):
            raise ValueError("token must be printable non-whitespace ASCII")
        return value
