"""The hub serving the current request, and the base URL it is reached at."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import current_app

from cpo_simulator.web import public_base

if TYPE_CHECKING:
    from cpo_simulator.hub.state import Hub

EXTENSION = "cpo_simulator.hub"


def current_hub() -> Hub:
    return cast("Hub", current_app.extensions[EXTENSION])


def hub_base() -> str:
    return public_base(current_hub().settings.base_url)
