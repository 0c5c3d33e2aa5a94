"""OCPI 2.2.1 wire models, one file per OCPI module (versions, credentials, locations,
tariffs, sessions, cdrs, commands, tokens) and common.py for the types they share; 2.1.1 is
translated to and from these at the edge (ocpi.v211)."""
