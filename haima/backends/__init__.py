"""Backends: where a Collection's calls go (the engine, a server, a cluster)."""
