"""The tariff engine's 330-case reference workload (tests/tariff_reference.py) comes to
exactly the answers recorded before the engine was made faster: a digest of each whole
breakdown (every total, dimension, line and note), so a speed-up can change no digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tariff_reference import Case, cases, digest

ANSWERS = json.loads((Path(__file__).with_name("tariff_reference_answers.json")).read_text())
CASES = cases()


def test_the_workload_is_the_one_the_answers_were_recorded_for() -> None:
    assert len(CASES) == 330
    assert sorted(c.name for c in CASES) == sorted(ANSWERS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_reference_case_keeps_its_answer(case: Case) -> None:
    breakdown = case.price()
    recorded = ANSWERS[case.name]
    assert format(breakdown.total.incl_vat, "f") == recorded["total"]
    assert len(breakdown.lines) == recorded["lines"]
    assert digest(breakdown) == recorded["digest"]
