"""How hard the generated-input tests (hypothesis) search: the `ci` profile by default
(`make test`, CI), `thorough` with FUZZ_PROFILE=thorough (before a release, or after
changing an OCPI receiver or the driver's API: the full sizes, three times as long).

Each test states its thorough example count; `ci` runs a third of it, which still sends
every receiver, route and field hundreds of generated inputs (docs/testing.md)."""

from __future__ import annotations

import os

SHARE = {"ci": 1 / 3, "thorough": 1.0}
PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
if PROFILE not in SHARE:
    raise ValueError(f"FUZZ_PROFILE={PROFILE!r}: expected one of {sorted(SHARE)}")


def examples(thorough: int) -> int:
    """The example count, in this profile, of a test whose thorough count is `thorough`."""
    return max(1, round(thorough * SHARE[PROFILE]))
