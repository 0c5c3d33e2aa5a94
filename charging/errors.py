"""What the domain refuses a driver: a stable code the driver's pages translate."""

from __future__ import annotations


class DriverError(Exception):
    """Something the driver asked for cannot be done; `code` is translated on the page."""

    def __init__(self, code: str, http_status: int = 409, detail: str | None = None,
                 *, amount: tuple[int, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.detail = detail
        # An amount the message names (minor units, currency): "the lowest limit is 11 kr".
        self.amount = amount
