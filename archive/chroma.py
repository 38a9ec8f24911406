"""Chroma clients, embedded or of a server (`chroma run`), whose failures are the domain's:
a server that cannot be reached, or that fails in the middle of a run, is `StoreUnavailable`."""
from __future__ import annotations

from .errors import ConfigError, StoreUnavailable, first_line, store_failed


class Guarded:
    """A Chroma client or collection whose failures (a server gone mid-run, Chroma's own errors)
    are the domain's `StoreUnavailable`; what it returns is as Chroma returns it."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name: str):
        found = getattr(self._inner, name)
        if not callable(found):
            return found

        def guarded(*args, **kwargs):
            try:
                return found(*args, **kwargs)
            except Exception as exc:
                if type(exc).__module__.startswith(("httpx", "chromadb")):
                    raise store_failed("vector store", exc) from None
                raise
        return guarded


def server_client(url: str, database: str, token: str):
    """A client of the Chroma server at `url`, in `database` (made when missing). `chroma run`
    itself checks no credentials: a token is for a proxy in front of it (README, "Bigger
    archives")."""
    import chromadb
    from chromadb.config import Settings
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"chroma_url must look like http://HOST:PORT, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 8000)
    headers = {"Authorization": f"Bearer {token}"} if token else None

    def settings() -> Settings:
        return Settings(anonymized_telemetry=False, chroma_server_host=parts.hostname,
                        chroma_server_http_port=port, chroma_server_ssl_enabled=parts.scheme == "https",
                        chroma_server_headers=headers, chroma_api_impl="chromadb.api.fastapi.FastAPI")

    try:
        admin = chromadb.AdminClient(settings())
        try:
            admin.get_database(database)
        except Exception:  # Chroma says NotFoundError, or a plain error naming it, by version
            try:
                admin.create_database(database)
            except Exception:  # another indexer made it a moment ago
                admin.get_database(database)
        return Guarded(chromadb.HttpClient(host=parts.hostname, port=port, ssl=parts.scheme == "https",
                                           headers=headers, settings=Settings(anonymized_telemetry=False),
                                           database=database))
    except ConfigError:
        raise
    except Exception as exc:
        raise StoreUnavailable(f"cannot use the Chroma server at {url}: {first_line(exc)}") from None
