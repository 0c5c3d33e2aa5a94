"""A simulated OCPI 2.2.1 hub, so ScanCharge can be tested behind a hub with several CPOs.

The hub is one OCPI platform that the parties connect to (transport_and_format "Message
Routing", credentials, mod_hub_client_info of ../shared/ocpi-spec/2.2.1/):

- An eMSP (ScanCharge) registers with the hub as with any CPO platform: token A from
  HubSettings.token_a (or Hub.invite()), credentials POST, token C back. The hub's
  credentials hold one role, HUB ("A Hub SHALL only report itself as role: Hub"); the parties
  behind it are listed by the hubclientinfo module (Sender) and pushed to connected parties'
  hubclientinfo Receiver endpoints when their status changes.
- The hub registers itself with CPO platforms (Hub.connect(versions_url, token_a)), e.g. CPO
  simulators, or is told about a party directly (Hub.add_party), and keeps a table
  {(country_code, party_id): connection}; each connection has its own tokens both ways.
- Every module is offered twice, as the hub's Sender interface (/ocpi/2.2.1/sender/<module>,
  where Receivers pull) and as its Receiver interface (/ocpi/2.2.1/receiver/<module>, where
  Senders push). A request is forwarded to the same interface of the party named by
  OCPI-to-country-code/OCPI-to-party-id, with that party's token, a new X-Request-ID, the
  same X-Correlation-ID and the caller as OCPI-from; its answer comes back with the headers
  swapped. Errors of the hub itself: 4001 unknown receiver, 4002 timeout, 4003 receiver not
  reachable, 4000 anything else (status_codes 4xxx).
- A GET of a list with OCPI-to naming the hub (or without OCPI-to) is a "GET All via Hubs":
  the objects of every connected party of another role, combined and paginated by the hub.
- A push (PUT/PATCH/POST/DELETE) of Locations, Tariffs or Tokens addressed to the hub is a
  Broadcast Push: answered by the hub, then sent to every party of another role with the
  hub as OCPI-from. Sessions, CDRs and commands are never broadcast: they need a receiver.
- URLs that lead back to a party behind the hub are rewritten to point at the hub: the
  response_url of a command (the CommandResult then travels back through the hub), the
  Location of a posted CDR, and the Link of a forwarded page.

It speaks 2.2.1 on both sides: OCPI 2.1.1 has no routing headers, so there is no 2.1.1 hub.
All state is in memory behind one lock, never held while talking HTTP. The only thread is
the optional still-alive check (HubSettings.alive_interval), stopped by shutdown().

    hub = create_hub(HubSettings(base_url="", token_a="hub-token-a"))
    server = ServerThread(hub.app); hub.settings.base_url = server.url; server.start()
    hub.connect(f"{cpo_url}/ocpi/versions", cpo_token_a)      # once per CPO
    # ScanCharge: connect to f"{server.url}/ocpi/versions" with token "hub-token-a"
"""

from cpo_simulator.hub.app import create_hub_app
from cpo_simulator.hub.model import ConnectionStatus, HubSettings
from cpo_simulator.hub.state import Hub


def create_hub(settings: HubSettings) -> Hub:
    """A hub with its Flask app (hub.app)."""
    hub = Hub(settings)
    hub.app = create_hub_app(hub)
    return hub


__all__ = ["ConnectionStatus", "Hub", "HubSettings", "create_hub"]
