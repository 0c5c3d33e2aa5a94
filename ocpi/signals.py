"""What the protocol edge announces after storing what a CPO sent.

Each signal is sent with sender="ocpi" once the object is stored, so a receiver can read
it from the database: after the commit, or (session_updated, cdr_received) inside the
request's transaction under extensions.shared_transaction(), where the receiver's units
of work join that transaction and the request commits once (or, when the domain's part
failed, rolls back and stores the object again alone). Receivers must be idempotent: a CPO
may send anything twice.
Nothing here waits for an answer: what the edge asks the domain is in ocpi.answers.
"""

from blinker import Namespace

_signals = Namespace()

# command_uid, command_type, result (CommandResultType value), message
command_result_received = _signals.signal("command-result-received")
# session_pk (ocpi_sessions.pk), status, authorization_reference, token_uid
session_updated = _signals.signal("session-updated")
# cdr_pk (ocpi_cdrs.pk), authorization_reference, token_uid, session_id
cdr_received = _signals.signal("cdr-received")
# A pushed CDR that could not be taken in (2001): nothing of it is stored, but its charge
# must not wait for it silently. party_pk, country_code, party_id (the CDR's, else the
# connection's), cdr_id, authorization_reference, token_uid (each None when the body did
# not name it as a plain short string), reason.
cdr_refused = _signals.signal("cdr-refused")
# party_pk, location_id, evse_uid (or None for the whole location)
location_updated = _signals.signal("location-updated")
