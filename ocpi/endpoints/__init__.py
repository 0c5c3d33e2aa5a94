"""ScanCharge's OCPI server, eMSP role: the /ocpi blueprint, one file per OCPI module.

blueprint.py holds what every endpoint shares (authentication, envelope, errors, headers,
the message log's hooks); then versions, credentials, and the Receivers CPOs push to
(locations, tariffs, sessions, cdrs, the commands' results, hubclientinfo), the tokens
Sender with real-time authorisation; v211.py is OCPI 2.1.1, translated at the edge.
Importing this package registers every endpoint on `bp`.
"""

from ocpi.endpoints import (  # noqa: F401  (each registers its endpoints on bp)
    cdrs,
    commands,
    credentials,
    hubclientinfo,
    locations,
    sessions,
    tariffs,
    tokens,
    v211,
    versions,
)
from ocpi.endpoints.blueprint import bp

__all__ = ["bp"]
