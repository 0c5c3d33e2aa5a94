"""What the driver reads about a charge or a charger: each status and error code in words
that say what happened and what to do next, from the catalogues (translations/)."""

from __future__ import annotations

from i18n import Texts, texts
from trust import seller, support_contact


def _statuses(t: Texts) -> dict[str, str]:
    return {
        # Charge statuses
        "CREATED": t.gettext("Waiting for payment"),
        "AUTHORIZED": t.gettext("Payment approved – starting the charger"),
        "STARTING": t.gettext("Starting to charge…"),
        "CHARGING": t.pgettext("charge status", "Charging"),
        "STOPPING": t.gettext("Stopping…"),
        "ENDED": t.gettext("Charging finished – working out the price"),
        "CAPTURED": t.gettext("Done – your receipt is ready"),
        "REFUNDED": t.gettext("Refunded"),
        "START_FAILED": t.gettext("Charging could not start"),
        "RELEASED": t.gettext("The card hold is released – nothing was charged"),
        "EXPIRED": t.gettext("The time to pay ran out"),
        "CANCELLED": t.gettext("Cancelled"),
        # EVSE statuses (OCPI)
        "AVAILABLE": t.gettext("Available"),
        "BLOCKED": t.gettext("Blocked"),
        "INOPERATIVE": t.gettext("Out of service"),
        "OUTOFORDER": t.gettext("Out of order"),
        "PLANNED": t.gettext("Planned"),
        "REMOVED": t.gettext("Removed"),
        "RESERVED": t.gettext("Reserved"),
        "UNKNOWN": t.gettext("Status unknown"),
    }


def _errors(t: Texts) -> dict[str, str]:
    return {
        "unknown_charger": t.gettext(
            "We can't find this charger. Check the code on the charger and scan again."
        ),
        "unknown_connector": t.gettext(
            "That connector isn't on this charger. Choose another connector."
        ),
        "charger_occupied": t.gettext(
            "This charger is in use. Try another charger or wait a moment."
        ),
        "charger_unavailable": t.gettext(
            "This charger is out of service. Choose another charger at this site."
        ),
        "payment_unavailable": t.gettext(
            "Payments can't be taken right now. Please try again in a moment."
        ),
        "invalid_request": t.gettext("The request is missing information."),
        "invalid_email": t.gettext(
            "That e-mail address doesn't look right. Fix it or leave the field empty."
        ),
        "unknown_charge": t.gettext(
            "We can't find this charge. Open the link from your payment again."
        ),
        "not_charging": t.gettext("Charging isn't running, so there is nothing to stop."),
        "cannot_cancel": t.gettext("Charging has already started. Stop it instead."),
        "no_receipt_yet": t.gettext(
            "The receipt isn't ready yet. It arrives once the operator sends the final price."
        ),
        "page_not_found": t.gettext("This page does not exist."),
        "invalid_amount": t.gettext("That amount can't be read. Write, for example, 200."),
        "cap_too_low": t.gettext(
            "That amount is below the charger's minimum price. Choose a higher amount."
        ),
        "unpaid_charge_open": t.gettext(
            "You already have an unpaid charge at this charger. Pay for it, or cancel it and "
            "start again."
        ),
        # Errors of the HTTP layer, for /api and /payments in JSON and for pages.
        "not_found": t.gettext("This page does not exist."),
        "method_not_allowed": t.gettext("That request can't be made at this address."),
        "request_too_large": t.gettext("The request is too large. Send less and try again."),
        "server_error": t.gettext(
            "Something went wrong on our side. Nothing was charged. Try again in a moment."
        ),
        # Rate limits (HTTP 429, with Retry-After): what was limited and when to try again.
        "rate_limited": t.gettext(
            "Too many requests in a short time. Wait a moment and try again."
        ),
        "rate_limited_charges": t.gettext(
            "You have started many charges in a short time. Nothing was charged. Wait a while "
            "and try again."
        ),
        "rate_limited_charger": t.gettext(
            "This charger has had too many payments in a short time. Nothing was charged. Wait "
            "a while or choose another charger."
        ),
        "rate_limited_payment": t.gettext(
            "Too many payment attempts. Nothing was charged. Wait a while and try again."
        ),
        "rate_limited_login": t.gettext("Too many sign-in attempts. Wait a while and try again."),
        **_charging_errors(t),
    }


def _charging_errors(t: Texts) -> dict[str, str]:
    return {
        # Why charging did not start (the CPO's answers), with what to do.
        "START_REJECTED": t.gettext(
            "The charger refused to start. Nothing was charged. Try another connector."
        ),
        "START_NOT_SUPPORTED": t.gettext(
            "This charger can't be started remotely. Nothing was charged. Try another charger."
        ),
        "START_FAILED": t.gettext(
            "The charger could not start. Nothing was charged. Check the cable is plugged in "
            "and try again."
        ),
        "START_TIMEOUT": t.gettext(
            "The charger didn't respond. Nothing was charged. Check the cable and try again."
        ),
        "START_NO_RESULT": t.gettext(
            "The charger didn't answer in time. Nothing was charged. Try again or choose "
            "another charger."
        ),
        "START_EVSE_OCCUPIED": t.gettext(
            "The charger is already in use. Nothing was charged. Choose another charger."
        ),
        "START_EVSE_INOPERATIVE": t.gettext(
            "The charger is out of service. Nothing was charged. Choose another charger."
        ),
        "START_NO_RESPONSE": t.gettext(
            "The charger's operator did not answer in time. If charging starts anyway, you pay "
            "only for what you charge; otherwise the hold on your card is released within a "
            "few minutes."
        ),
        "CPO_UNREACHABLE": t.gettext(
            "We can't reach the charger's operator right now. Nothing was charged. Try again soon."
        ),
        "STOP_REJECTED": t.gettext(
            "The charger refused to stop. We keep trying. You can also end charging from the "
            "car and unplug the cable; you only pay for what was charged."
        ),
        "STOP_UNREACHABLE": t.gettext(
            "We can't reach the charger's operator to stop charging. We keep trying. Meanwhile "
            "end charging from the car and unplug the cable; you only pay for what was charged."
        ),
        "STOP_PENDING": t.gettext("Your stop is sent as soon as the charger confirms the start."),
        "STOP_UNCONFIRMED": t.gettext(
            "The charger has not confirmed the stop. End charging from the car and unplug the "
            "cable, or call support. We only charge for what was charged."
        ),
    }


ERROR_CODES = frozenset(_errors(texts("en")))
# Every other refused or lost stop reads like a refusal: the advice is the same.
STOP_FAILURE_FALLBACK = "STOP_REJECTED"
# A stop that was sent and not answered, or could not be sent at all (ocpi.commands).
STOP_NOT_SENT = {"STOP_ERROR": "STOP_UNREACHABLE", "STOP_NO_RESPONSE": "STOP_UNREACHABLE"}
# The texts that leave the driver needing a person: each is followed by the support contact.
NEEDS_HELP = frozenset({"STOP_REJECTED", "STOP_UNREACHABLE", "STOP_UNCONFIRMED",
                        "START_NO_RESPONSE", "server_error", "payment_unavailable"})


def status_text(status: str, language: str) -> str:
    return _statuses(texts(language)).get(status, status)


def _amount_errors(t: Texts, amount: str) -> dict[str, str]:
    """Errors that name an amount (formatted in the language)."""
    return {
        "cap_too_low": t.gettext(
            "The lowest limit at this charger is %(amount)s: the start fee and a little "
            "energy. Choose that or more.", amount=amount),
    }


def error_text(code: str | None, language: str, *, amount: str | None = None) -> str:
    if amount is not None and code in _amount_errors(texts(language), ""):
        return _amount_errors(texts(language), amount)[code]
    if code and code.startswith("START_") and code not in ERROR_CODES:
        code = "START_FAILED"
    code = STOP_NOT_SENT.get(code or "", code)
    if code and code.startswith("STOP_") and code not in ERROR_CODES:
        code = STOP_FAILURE_FALLBACK
    t = texts(language)
    found = _errors(t).get(code or "")
    if found is not None:
        return f"{found} {help_text(language)}" if code in NEEDS_HELP else found
    return t.gettext(
        "Something went wrong. Try again, or contact support if it happens again: "
        "%(contact)s.", contact=support_contact(language))


def help_text(language: str) -> str:
    """The sentence that names whom to call, for every error that leaves the driver stuck."""
    seller_ = seller()
    return texts(language).gettext("Support (%(seller)s): %(contact)s.", seller=seller_.name,
                                   contact=support_contact(language))
