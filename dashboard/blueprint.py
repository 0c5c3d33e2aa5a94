"""The dashboard's blueprint, in a module of its own so the view modules (dashboard/auth.py,
dashboard/people.py) register on it without importing the package that imports them."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
PAGE_SIZE = 50
