"""The domain's background tasks, by name."""

from __future__ import annotations

from charging import service
from jobs import background_task, periodic_task

background_task("charging.start")(service.start)
background_task("charging.command_deadline")(service.command_deadline)
# Money moves and stops are safe to repeat (idempotency keys, state checks) and worth
# retrying soon after a passing gateway or CPO failure.
background_task("charging.release_hold", retries=5, retry_delay=20)(service.release_hold)
# send_stop schedules its own next try with backoff; this covers a crash inside one.
background_task("charging.send_stop", retries=3, retry_delay=15)(service.send_stop)
background_task("charging.expire_unpaid")(service.expire_unpaid)
background_task("charging.settle", retries=5, retry_delay=20)(service.settle)
background_task("charging.settle_without_cdr", retries=5, retry_delay=20)(
    service.settle_without_cdr
)
# Reads the authorisation's capture_before when the webhook did not carry it.
background_task("charging.record_capture_before", retries=5, retry_delay=20)(
    service.record_capture_before
)
background_task("charging.stop_unpaid_session")(service.stop_unpaid_session)
# Its own retries with backoff (OCPI_RETRY_*), each try on the charge's timeline.
background_task("charging.unlock_connector")(service.unlock_connector)
periodic_task("charging.sweep", "SWEEP_INTERVAL")(service.sweep)
