"""A flag in the operator's words: what happened and what resolves it. Shared by the Needs
attention inbox and a charge's own page (the actions a state allows are the domain's:
charging/operator_actions.actions_for)."""

from __future__ import annotations

from flask_babel import gettext


def flag_words(code: str) -> str:
    """What a flag means, for the operator, in the operator's language."""
    words = {
        "COST_ABOVE_HOLD": gettext("The charging cost more than was held: only the hold was "
                                   "captured. Claim the rest from the driver or write it off."),
        "CDR_PRICE_MISMATCH": gettext("The CPO's CDR total differs from what its own tariff "
                                      "gives. Check with the CPO; refund the driver if they "
                                      "paid too much."),
        "CAPTURE_FAILED": gettext("The payment provider refused the capture. Retry it, or "
                                  "release the hold."),
        "RELEASE_FAILED": gettext("The hold could not be released: the driver's money is "
                                  "still held. Release it again."),
        "REFUND_FAILED": gettext("A refund did not reach the card. Pay the driver back "
                                 "another way, then mark it resolved."),
        "REFUND_UNRECORDED": gettext("Money was refunded outside ScanCharge (no credit note). "
                                     "Check the payment provider's dashboard."),
        "DISPUTED": gettext("The card holder disputes the payment. Answer with evidence in "
                            "the payment provider's dashboard before the due date."),
        "DISPUTE_LOST": gettext("A dispute was lost: the money went back to the card "
                                "holder."),
        "CAPTURED_WITHOUT_CDR": gettext("No CDR came in time: the last known cost was "
                                        "captured. Settle the difference with the CPO."),
        "RELEASED_WITHOUT_CDR": gettext("No CDR and no cost came in time: the hold was "
                                        "released and nothing charged."),
        "AUTHORIZATION_LAPSED": gettext("The card authorisation ended before the capture: "
                                        "nothing can be captured."),
        "CURRENCY_MISMATCH": gettext("The CDR is in another currency than the hold: nothing "
                                     "was captured. Release the hold or settle by hand."),
        "UNPAID_SESSION": gettext("The charger charged after the hold was released: no money "
                                  "covers this session."),
        "CDR_CREDITED": gettext("The CPO credited the CDR after the capture: the driver may "
                                "be owed a refund."),
        "CDR_REPLACED": gettext("The CPO sent another CDR after the charge was settled: "
                                "compare it with what was captured."),
        "CDR_REFUSED": gettext("A CDR for this charge was refused as invalid."),
        "STOP_UNCONFIRMED": gettext("The charger never confirmed the stop: check with the "
                                    "CPO that charging has stopped."),
    }
    return words.get(code, code)
