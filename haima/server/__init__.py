"""The Haima server: `haima run` serves a store over Chroma's REST API v2 and an
OpenAI-compatible embeddings endpoint. Needs the `server` extra."""

from haima.server.app import create_app
from haima.server.state import ServerConfig

__all__ = ["ServerConfig", "create_app"]
