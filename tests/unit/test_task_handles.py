"""Tasks are enqueued through handles; the wiring module registers each exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import jobs
import wiring

ROOT = Path(__file__).resolve().parents[2]


def test_every_product_task_is_in_the_wiring_list_once() -> None:
    listed = wiring.tasks()
    names = [t.name for t in listed]
    assert len(names) == len(set(names))
    declared = {t.name for t in jobs.declared_tasks() if not t.name.startswith("tests.")}
    assert set(names) == declared
    for handle in listed:
        assert isinstance(handle, jobs.Task)
        assert jobs.declared_tasks().count(handle) == 1


def test_names_stay_as_queued_by_older_releases() -> None:
    names = {t.name for t in wiring.tasks()}
    assert {"charging.settle", "charging.send_stop", "charging.sweep", "ocpi.pull_cdrs",
            "payments.send_receipt_email", "payments.deliver_demo_event"} <= names


def test_two_functions_with_one_name_fail_at_declaration() -> None:
    @jobs.background_task("tests.unique_name")
    def first() -> None: ...

    with pytest.raises(ValueError):
        @jobs.background_task("tests.unique_name")
        def second() -> None: ...


def test_a_typo_in_a_handle_fails_at_import(tmp_path: Path) -> None:
    module = tmp_path / "typo_mod.py"
    module.write_text("from charging import settlement\nHANDLE = settlement.setle\n")
    run = subprocess.run([sys.executable, "-c", "import typo_mod"], cwd=ROOT,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}"}, capture_output=True, text=True)
    assert run.returncode != 0 and "AttributeError" in run.stderr


def test_no_call_site_enqueues_by_name() -> None:
    offenders = []
    for path in [*ROOT.glob("charging/*.py"), *ROOT.glob("ocpi/*.py"),
                 *ROOT.glob("payments/*.py"), ROOT / "wiring.py"]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "queue.enqueue(" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
