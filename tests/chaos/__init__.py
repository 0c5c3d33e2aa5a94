"""The chaos test: ScanCharge's scale-out shape under SIGKILLs and database cuts.

    python -m tests.chaos --charges 60 --kills 15 --cuts 5 --seed 1

See tests/chaos/runner.py for what it runs and the invariants it checks.
"""
