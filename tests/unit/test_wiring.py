"""wiring.RECEIVERS is the one list of who hears what: each receiver connected once, and
every signal an edge declares either heard or named here as deliberately unheard."""

from blinker import NamedSignal

import wiring
from ocpi import signals as ocpi_signals
from payments import signals as payment_signals

# Sent for observers to come (the charger page could refresh on it); the domain has no
# decision to make on a Location change.
UNHEARD = {ocpi_signals.location_updated}


def _declared() -> set[NamedSignal]:
    return {value for module in (ocpi_signals, payment_signals)
            for value in vars(module).values() if isinstance(value, NamedSignal)}


def test_every_declared_signal_is_heard_or_named_unheard():
    heard = {receiver.signal for receiver in wiring.RECEIVERS}
    assert _declared() - heard == UNHEARD
    assert not heard & UNHEARD


def test_connect_twice_subscribes_each_receiver_once():
    wiring.connect()
    wiring.connect()
    for receiver in wiring.RECEIVERS:
        mine = [r for r in receiver.signal.receivers_for(None)
                if r is wiring._connected[receiver]]
        assert len(mine) == 1, receiver


def test_each_receiver_is_listed_once_and_its_kind_has_a_wrapper():
    assert len(set(wiring.RECEIVERS)) == len(wiring.RECEIVERS)
    assert set(wiring._WRAP) == set(wiring.Kind)


def test_a_hold_receiver_gets_the_hold_and_the_event_id():
    seen = []
    wrapped = wiring._WRAP[wiring.Kind.HOLD](lambda hold, event_id: seen.append((hold, event_id)))
    wrapped("payments", hold="pi_1", event_id="evt_1", extra="ignored")
    assert seen == [("pi_1", "evt_1")]
