"""The OCPI protocol edge, by OCPI module: wire models (ocpi.modules), the /ocpi endpoints
(ocpi.endpoints), transport, the client toward CPOs, and what is stored and pulled.

Nothing here knows about charges or payments. Receivers store what they are sent and
announce it through the blinker signals in ocpi.signals; the domain listens and decides.
What the edge must ask the domain and wait for is injected (ocpi.answers).
"""
