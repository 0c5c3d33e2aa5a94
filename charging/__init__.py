"""The domain: the life of one charge, from a driver's scan to a captured payment and receipt.

It listens to what the protocol edge (ocpi) and the money edge (payments) announce, and
decides what happens next; every move of a charge goes through charging.states.
"""
