"""`haima run`: serve a store over HTTP."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path

import click


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _configure_logging(level: str, access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("haima.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    logging.getLogger("haima").setLevel(level.upper())
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")


@click.command()
@click.option(
    "--path",
    default="./haima_data",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The store to serve (created if missing).",
)
@click.option(
    "--backend",
    "milvus",
    default=None,
    metavar="MILVUS_URI",
    help="Serve a Milvus store instead of --path: milvus://host:19530, "
    "milvus+https://host (with --milvus-token) or milvus-lite:///path/store.db.",
)
@click.option(
    "--milvus-token",
    envvar="HAIMA_MILVUS_TOKEN",
    default=None,
    help="The Milvus token (user:password or an API key). Env: HAIMA_MILVUS_TOKEN.",
)
@click.option("--milvus-db", default=None, help="The Milvus database Haima works in.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-key",
    envvar="HAIMA_API_KEY",
    default=None,
    help="Require this key (Authorization: Bearer or X-Chroma-Token). Env: HAIMA_API_KEY.",
)
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    help="Allow binding a non-loopback address without an API key.",
)
@click.option("--allow-reset", is_flag=True, help="Let clients call reset() (deletes everything).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--max-request-mb",
    default=256,
    show_default=True,
    type=click.IntRange(1, 1 << 20),
    help="Larger request bodies get 413.",
)
@click.option(
    "--preload/--no-preload",
    default=True,
    show_default=True,
    help="Load the models the store's collections embed with in the background, at start "
    "and when a collection naming one is made (the server answers meanwhile; requests "
    "that need a model wait for it). Collections embedded by clients load none.",
)
@click.option(
    "--filter-view-after",
    default=3,
    show_default=True,
    type=click.IntRange(0, None),
    help="Queries with one filter before it gets its own graph (0: never).",
)
@click.option(
    "--request-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0, None),
    help="Seconds a request may run before it is stopped and answered 504 (0: no limit).",
)
@click.option(
    "--shutdown-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, None),
    help="On SIGTERM or Ctrl-C, seconds to let running requests finish before stopping.",
)
@click.option(
    "--read-only-console",
    is_flag=True,
    help="The web console at / offers no deletes or other writes (the API is unchanged).",
)
@click.option(
    "--allow-embedding-url",
    "embedding_urls",
    multiple=True,
    metavar="PREFIX",
    help="Let the server call embedding APIs under this URL prefix for collections whose "
    "function names one (repeatable; none by default: clients then send embeddings).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def run(
    path: Path,
    milvus: str | None,
    milvus_token: str | None,
    milvus_db: str | None,
    host: str,
    port: int,
    api_key: str | None,
    allow_unauthenticated: bool,
    allow_reset: bool,
    workers: int,
    max_request_mb: int,
    preload: bool,
    filter_view_after: int,
    request_timeout: float,
    shutdown_timeout: float,
    read_only_console: bool,
    embedding_urls: tuple[str, ...],
    access_log: bool,
    log_level: str,
) -> None:
    """Serve a store: a web console at /, Chroma's REST API v2, OpenAI-compatible
    /v1/embeddings, /metrics."""
    from haima._process import collector_paused

    # The start makes ~80,000 long-lived objects and no garbage: no collector passes over
    # them (~40 ms of the start); once the app is made, they are left out of every pass.
    with collector_paused():
        try:
            import uvicorn

            from haima.server.app import CONFIG_ENV, app_for_serving, config_to_environment
            from haima.server.state import ServerConfig
        except ImportError as exc:
            raise click.ClickException(
                f"the server needs the 'server' extra: pip install 'haima[server]' ({exc})"
            ) from None
    if not api_key and not is_loopback(host) and not allow_unauthenticated:
        raise click.UsageError(
            f"refusing to serve {host} without an API key: anyone who can reach it could read "
            "and delete data. Set --api-key (or HAIMA_API_KEY), bind 127.0.0.1, or pass "
            "--allow-unauthenticated."
        )
    if milvus is not None:
        from haima.backends.milvus import is_milvus_target

        if not is_milvus_target(milvus):
            raise click.BadParameter(
                f"{milvus!r} is not a Milvus URI (milvus://host:19530, milvus+https://host, "
                "milvus-lite:///path/store.db)",
                param_hint="--backend",
            )
    config = ServerConfig(
        path=path,
        milvus=milvus,
        milvus_token=milvus_token,
        milvus_db=milvus_db,
        api_key=api_key or None,
        allow_reset=allow_reset,
        max_request_bytes=max_request_mb * 1024 * 1024,
        preload_embeddings=preload,
        filter_view_after=filter_view_after,
        request_timeout=request_timeout,
        read_only_console=read_only_console,
        embedding_urls=tuple(embedding_urls),
    )
    _configure_logging(log_level, access_log)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"Haima {milvus or path} on http://{shown}:{port}  (console: /, API docs: /docs, Chroma clients: "
        f"chromadb.HttpClient(host={host!r}, port={port}))",
        err=True,
    )
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": shutdown_timeout,
    }
    if workers == 1:
        with collector_paused():
            app = app_for_serving(config)
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        os.environ[CONFIG_ENV] = config_to_environment(config)
        uvicorn.run(
            "haima.server.app:app_from_environment",
            factory=True,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )
