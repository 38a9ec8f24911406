"""Domain errors. The CLI turns each into one line and an exit code."""


def first_line(exc: BaseException) -> str:
    """What a library's exception says, in one line (its name when it says nothing)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class MemesError(Exception):
    """Base of every error this tool reports to a user."""


class RecordFormatError(MemesError):
    """A record file does not follow the record format."""


class MemeNotFound(MemesError):
    """No meme matches the given id, hash or path."""


class ArchiveLocked(MemesError):
    """Another process is writing to this archive."""


class ModelMismatch(MemesError):
    """A vector collection was made by another model than the one configured."""


class ModelUnavailable(MemesError):
    """A model could not be loaded (weights missing, no network, bad name)."""


class ConfigError(MemesError):
    """The configuration file or a setting is invalid."""


class StoreUnavailable(MemesError):
    """The records server or the vector server cannot be reached."""


def store_failed(which: str, exc: BaseException) -> StoreUnavailable:
    """A server's failure in the middle of a run (`which`: records server, vector store)."""
    return StoreUnavailable(f"the {which} failed ({type(exc).__name__}: {first_line(exc)}); everything committed "
                            "before it is kept")


class ArchiveDamaged(MemesError):
    """A file of the archive cannot be read as what it should be (the catalog, the vector index)."""


class ReadOnlyArchive(MemesError):
    """The archive cannot be written (a read-only mount or folder): searches work, writes do not."""


class DiskFull(MemesError):
    """The disk holding the archive has no space left."""
