"""Versions (version_information_endpoint.asciidoc): the versions ScanCharge speaks,
and the 2.2.1 endpoints."""

from __future__ import annotations

from flask import Response

from ocpi import credentials as creds
from ocpi.endpoints.blueprint import VERSION, bp, ocpi_response


@bp.get("/versions")
def versions() -> Response:
    return ocpi_response(
        [{"version": version, "url": f"{creds.ocpi_base_url()}/{version}"}
         for version in creds.SUPPORTED_VERSIONS]
    )


@bp.get(f"/{VERSION}")
def version_details() -> Response:
    base = f"{creds.ocpi_base_url()}/{VERSION}"
    endpoints = [
        {"identifier": identifier, "role": role, "url": f"{base}/{path}"}
        for identifier, role, path in creds.OUR_ENDPOINTS_221
    ]
    return ocpi_response({"version": VERSION, "endpoints": endpoints})
