"""Static files under content-hashed names, cached for a year, and responses gzipped.

A phone on a poor connection at a charger should fetch the page's CSS and JS once and then
never again until they change: `url_for("static", filename="driver.css")` writes
`/static/driver.<hash>.css` (the hash is the file's content's), which is answered with
`Cache-Control: immutable` for a year; a new release changes the name, so no stale file is
ever used. A name whose hash is not the file's current one is a 404, never a wrong file.
The plain name still works (conditional requests, no long cache) for anything linking it.

Text responses (pages, CSS, JS, JSON, SVG) are gzipped for clients that accept it; the
static files' gzip is computed once per content hash. The OCPI edge is left alone: CPOs'
bodies are small, its message log reads the plain body, and peers' gzip support varies.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_from_directory

HASH_LENGTH = 10
YEAR = 365 * 24 * 3600
COMPRESSIBLE = {"text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
                "application/json", "image/svg+xml", "text/csv"}
# Below this a gzip header costs about what it saves.
MIN_COMPRESS_BYTES = 512
_HASHED = re.compile(rf"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<suffix>\.[^./]+)$")


def plain_name(filename: str) -> str:
    """'driver/charger.b31809a8d3.js' -> 'driver/charger.js' (a name without a hash as is)."""
    match = _HASHED.match(filename)
    return match["stem"] + match["suffix"] if match else filename


class StaticAssets:
    """The content hash of each static file, recomputed when its mtime changes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._hashes: dict[str, tuple[float, str]] = {}
        self._gzipped: dict[tuple[str, str], bytes] = {}

    def content_hash(self, filename: str) -> str | None:
        path = (self.folder / filename).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            return None
        mtime = path.stat().st_mtime
        known = self._hashes.get(filename)
        if known is None or known[0] != mtime:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]
            known = self._hashes[filename] = (mtime, digest)
        return known[1]

    def hashed_name(self, filename: str) -> str:
        digest = self.content_hash(filename)
        if digest is None:
            return filename
        stem, dot, suffix = filename.rpartition(".")
        return f"{stem}.{digest}.{suffix}" if dot else filename

    def gzipped(self, filename: str, digest: str, data: bytes) -> bytes:
        key = (filename, digest)
        if key not in self._gzipped:
            self._gzipped[key] = gzip.compress(data, compresslevel=9, mtime=0)
        return self._gzipped[key]


def init_static_assets(app: Flask) -> None:
    assert app.static_folder is not None
    assets = StaticAssets(Path(app.static_folder))
    app.extensions["static_assets"] = assets

    @app.url_defaults
    def hashed_static_names(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values:
            values["filename"] = assets.hashed_name(values["filename"])

    def static(filename: str) -> Response:
        match = _HASHED.match(filename)
        if match is None:
            return app.send_static_file(filename)
        plain = plain_name(filename)
        if assets.content_hash(plain) != match["hash"]:
            abort(404)
        response = send_from_directory(app.static_folder or "", plain, max_age=YEAR)
        response.cache_control.public = True
        response.cache_control.immutable = True
        response.headers["X-Static-Hash"] = match["hash"]
        return response

    app.view_functions["static"] = static
    app.after_request(_compress(assets))


def _compress(assets: StaticAssets) -> Any:
    def compress(response: Response) -> Response:
        digest = response.headers.pop("X-Static-Hash", None)
        if (response.status_code != 200 or "Content-Encoding" in response.headers
                or response.mimetype not in COMPRESSIBLE or request.path.startswith("/ocpi")
                or "gzip" not in request.headers.get("Accept-Encoding", "").lower()):
            return response
        if response.is_streamed and not response.direct_passthrough:
            # A generator (a long export, say) is sent as it is made, never buffered here;
            # a static file (send_file's passthrough) is small and read whole.
            return response
        response.vary.add("Accept-Encoding")
        response.direct_passthrough = False
        data = response.get_data()
        if len(data) < MIN_COMPRESS_BYTES:
            return response
        if digest and request.view_args:
            body = assets.gzipped(str(request.view_args["filename"]), digest, data)
        else:
            body = gzip.compress(data, compresslevel=6, mtime=0)
        response.set_data(body)
        response.headers["Content-Encoding"] = "gzip"
        etag, weak = response.get_etag()
        if etag:
            response.set_etag(f"{etag}-gzip", bool(weak))
        return response

    return compress
