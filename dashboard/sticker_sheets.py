"""The dashboard's sticker sheets: a site's chargers as a print-ready PDF (stickers.py).

A blueprint of its own beside the dashboard's, sharing its sign-in (login_required)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

import stickers
from dashboard import login_required
from extensions import db
from ocpi.models import OcpiLocation

bp = Blueprint("dashboard_stickers", __name__, url_prefix="/dashboard")


@bp.get("/sites/<int:pk>/stickers.pdf")
@login_required
def sheet(pk: int) -> Response:
    """?size=a4 (default): 8 stickers per A4 page with cut marks; ?size=label: 62 x 100 mm."""
    size = request.args.get("size", "a4")
    if size not in stickers.SIZES:
        abort(404)
    location = db.get_or_404(OcpiLocation, pk)
    made = stickers.stickers_for_location(location, current_app.config)
    if not made:
        abort(404)
    name = location.data.get("name") or location.location_id
    pdf = stickers.render_sheet(made, size, title=f"{name} ({len(made)})")
    response = Response(pdf, mimetype="application/pdf")
    filename = f"stickers-{location.location_id.lower()}-{size}.pdf"
    # The operator prints from the browser's viewer; "download" when saving for a print shop.
    disposition = "attachment" if request.args.get("download") else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response
