"""The OCPI protocol edge: wire models, transport, client, server blueprints and a CPO simulator.

Nothing here knows about charges or payments. Receivers store what they are sent and
announce it through the blinker signals in ocpi.signals; the domain listens and decides.
"""
