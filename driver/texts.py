"""What the driver reads: statuses and errors in Swedish and English, each saying what
happened and what to do next."""

from __future__ import annotations

STATUS = {
    # Charge statuses
    "CREATED": ("Väntar på betalning", "Waiting for payment"),
    "AUTHORIZED": (
        "Betalning godkänd – startar laddaren",
        "Payment approved – starting the charger",
    ),
    "STARTING": ("Startar laddningen…", "Starting to charge…"),
    "CHARGING": ("Laddar", "Charging"),
    "STOPPING": ("Avslutar laddningen…", "Stopping…"),
    "ENDED": ("Laddningen är klar – räknar ut priset", "Charging finished – working out the price"),
    "CAPTURED": ("Klart – kvittot är klart", "Done – your receipt is ready"),
    "REFUNDED": ("Återbetald", "Refunded"),
    "START_FAILED": ("Laddningen kunde inte starta", "Charging could not start"),
    "RELEASED": (
        "Reservationen på kortet är släppt – ingenting debiterades",
        "The card hold is released – nothing was charged",
    ),
    "EXPIRED": ("Tiden för betalning gick ut", "The time to pay ran out"),
    "CANCELLED": ("Avbruten", "Cancelled"),
    # EVSE statuses (OCPI)
    "AVAILABLE": ("Ledig", "Available"),
    "BLOCKED": ("Blockerad", "Blocked"),
    "INOPERATIVE": ("Ur funktion", "Out of service"),
    "OUTOFORDER": ("Ur funktion", "Out of order"),
    "PLANNED": ("Planerad", "Planned"),
    "REMOVED": ("Borttagen", "Removed"),
    "RESERVED": ("Reserverad", "Reserved"),
    "UNKNOWN": ("Status okänd", "Status unknown"),
}

ERRORS = {
    "unknown_charger": (
        "Vi hittar inte den här laddaren. Kontrollera koden på laddaren och skanna igen.",
        "We can't find this charger. Check the code on the charger and scan again.",
    ),
    "unknown_connector": (
        "Uttaget finns inte på den här laddaren. Välj ett annat uttag.",
        "That connector isn't on this charger. Choose another connector.",
    ),
    "charger_occupied": (
        "Laddaren används just nu. Prova en annan laddare eller vänta en stund.",
        "This charger is in use. Try another charger or wait a moment.",
    ),
    "charger_unavailable": (
        "Laddaren är ur funktion. Välj en annan laddare på platsen.",
        "This charger is out of service. Choose another charger at this site.",
    ),
    "payment_unavailable": (
        "Betalningen kan inte tas emot just nu. Försök igen om en liten stund.",
        "Payments can't be taken right now. Please try again in a moment.",
    ),
    "invalid_request": ("Förfrågan saknar uppgifter.", "The request is missing information."),
    "invalid_email": (
        "E-postadressen ser inte rätt ut. Rätta den eller lämna fältet tomt.",
        "That e-mail address doesn't look right. Fix it or leave the field empty.",
    ),
    "unknown_charge": (
        "Vi hittar inte den här laddningen. Öppna länken från din betalning igen.",
        "We can't find this charge. Open the link from your payment again.",
    ),
    "not_charging": (
        "Laddningen pågår inte, så den kan inte stoppas.",
        "Charging isn't running, so there is nothing to stop.",
    ),
    "cannot_cancel": (
        "Laddningen har redan startat. Stoppa den i stället.",
        "Charging has already started. Stop it instead.",
    ),
    "no_receipt_yet": (
        "Kvittot är inte klart än. Det kommer när operatören har skickat slutpriset.",
        "The receipt isn't ready yet. It arrives once the operator sends the final price.",
    ),
    "page_not_found": ("Sidan finns inte.", "This page does not exist."),
    "invalid_amount": (
        "Beloppet går inte att läsa. Skriv till exempel 200.",
        "That amount can't be read. Write, for example, 200.",
    ),
    "cap_too_low": (
        "Beloppet är lägre än laddarens minsta pris. Välj ett högre belopp.",
        "That amount is below the charger's minimum price. Choose a higher amount.",
    ),
    "unpaid_charge_open": (
        "Du har redan en obetald laddning på den här laddaren. Betala den, eller avbryt den "
        "och börja om.",
        "You already have an unpaid charge at this charger. Pay for it, or cancel it and "
        "start again.",
    ),
    # Errors of the HTTP layer, for /api and /payments in JSON and for pages.
    "not_found": ("Sidan finns inte.", "This page does not exist."),
    "method_not_allowed": (
        "Förfrågan går inte att göra på den här adressen.",
        "That request can't be made at this address.",
    ),
    "request_too_large": (
        "Förfrågan är för stor. Skicka mindre och försök igen.",
        "The request is too large. Send less and try again.",
    ),
    "server_error": (
        "Något gick fel hos oss. Ingenting debiterades. Försök igen om en stund.",
        "Something went wrong on our side. Nothing was charged. Try again in a moment.",
    ),
    # Rate limits (HTTP 429, with Retry-After): what was limited and when to try again.
    "rate_limited": (
        "För många förfrågningar på kort tid. Vänta en stund och försök igen.",
        "Too many requests in a short time. Wait a moment and try again.",
    ),
    "rate_limited_charges": (
        "Du har startat många laddningar på kort tid. Ingenting debiterades. Vänta en stund "
        "och försök igen.",
        "You have started many charges in a short time. Nothing was charged. Wait a while "
        "and try again.",
    ),
    "rate_limited_charger": (
        "Laddaren har fått för många betalningar på kort tid. Ingenting debiterades. Vänta "
        "en stund eller välj en annan laddare.",
        "This charger has had too many payments in a short time. Nothing was charged. Wait "
        "a while or choose another charger.",
    ),
    "rate_limited_payment": (
        "För många betalningsförsök. Ingenting debiterades. Vänta en stund och försök igen.",
        "Too many payment attempts. Nothing was charged. Wait a while and try again.",
    ),
    "rate_limited_login": (
        "För många inloggningsförsök. Vänta en stund och försök igen.",
        "Too many sign-in attempts. Wait a while and try again.",
    ),
    # Why charging did not start (the CPO's answers), with what to do.
    "START_REJECTED": (
        "Laddaren nekade start. Ingenting debiterades. Prova ett annat uttag.",
        "The charger refused to start. Nothing was charged. Try another connector.",
    ),
    "START_NOT_SUPPORTED": (
        "Laddaren kan inte startas på distans. Ingenting debiterades. Prova en annan laddare.",
        "This charger can't be started remotely. Nothing was charged. Try another charger.",
    ),
    "START_FAILED": (
        "Laddaren kunde inte starta. Ingenting debiterades. Kontrollera att kabeln sitter i "
        "och försök igen.",
        "The charger could not start. Nothing was charged. Check the cable is plugged in and "
        "try again.",
    ),
    "START_TIMEOUT": (
        "Laddaren svarade inte. Ingenting debiterades. Kontrollera kabeln och försök igen.",
        "The charger didn't respond. Nothing was charged. Check the cable and try again.",
    ),
    "START_NO_RESULT": (
        "Laddaren svarade inte i tid. Ingenting debiterades. Försök igen eller välj en annan "
        "laddare.",
        "The charger didn't answer in time. Nothing was charged. Try again or choose another "
        "charger.",
    ),
    "START_EVSE_OCCUPIED": (
        "Laddaren används redan. Ingenting debiterades. Välj en annan laddare.",
        "The charger is already in use. Nothing was charged. Choose another charger.",
    ),
    "START_EVSE_INOPERATIVE": (
        "Laddaren är ur funktion. Ingenting debiterades. Välj en annan laddare.",
        "The charger is out of service. Nothing was charged. Choose another charger.",
    ),
    "START_NO_RESPONSE": (
        "Laddarens operatör svarade inte i tid. Om laddningen ändå startar betalar du bara för "
        "det du laddar; annars släpps reservationen på ditt kort inom några minuter.",
        "The charger's operator did not answer in time. If charging starts anyway, you pay "
        "only for what you charge; otherwise the hold on your card is released within a few "
        "minutes.",
    ),
    "CPO_UNREACHABLE": (
        "Vi når inte laddarens operatör just nu. Ingenting debiterades. Försök igen om en stund.",
        "We can't reach the charger's operator right now. Nothing was charged. Try again soon.",
    ),
    "STOP_REJECTED": (
        "Laddaren nekade att stoppa. Vi fortsätter försöka. Du kan också avsluta laddningen i "
        "bilen och koppla ur kabeln; du betalar bara för det som laddats.",
        "The charger refused to stop. We keep trying. You can also end charging from the car "
        "and unplug the cable; you only pay for what was charged.",
    ),
    "STOP_PENDING": (
        "Stoppet skickas så snart laddaren har bekräftat starten.",
        "Your stop is sent as soon as the charger confirms the start.",
    ),
    "STOP_UNCONFIRMED": (
        "Laddaren har inte bekräftat stoppet. Avsluta laddningen i bilen och koppla ur kabeln, "
        "eller ring supporten. Vi debiterar bara för det som laddats.",
        "The charger has not confirmed the stop. End charging from the car and unplug the "
        "cable, or call support. We only charge for what was charged.",
    ),
}

# Every other refused or lost stop reads like a refusal: the advice is the same.
STOP_FAILURE_FALLBACK = "STOP_REJECTED"

GENERIC_ERROR = (
    "Något gick fel. Försök igen, eller kontakta operatören om det händer igen.",
    "Something went wrong. Try again, or contact the operator if it happens again.",
)


def _pick(pair: tuple[str, str], language: str) -> str:
    return pair[0] if language == "sv" else pair[1]


def status_text(status: str, language: str) -> str:
    return _pick(STATUS.get(status, (status, status)), language)


def error_text(code: str | None, language: str) -> str:
    if code and code.startswith("START_") and code not in ERRORS:
        code = "START_FAILED"
    if code and code.startswith("STOP_") and code not in ERRORS:
        code = STOP_FAILURE_FALLBACK
    return _pick(ERRORS.get(code or "", GENERIC_ERROR), language)
