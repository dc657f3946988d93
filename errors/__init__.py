"""Domain errors: the few kinds of failure that users and callers need to tell apart.

The bottom of the import order: every layer (connectors, indexing, training, answering, flows)
raises these, so they belong to none of them.
"""

from __future__ import annotations


class KupError(Exception):
    """Base class: a failure with a message meant for the user (no traceback needed). Its message is masked when it
    is made (``errors.redact.mask_text``: URL passwords, secret query values), so no log line, status or artifact
    that repeats it can leak a credential."""

    def __init__(self, *args: object) -> None:
        from errors.redact import mask_text

        super().__init__(*(mask_text(a) if isinstance(a, str) else a for a in args))


class ConfigError(KupError):
    """A setting, flag or sources file is wrong; the message names what to change."""


class SourceError(KupError):
    """One source could not be read (dead feed, bad database URL); other sources go on."""


class FetchError(KupError):
    """An HTTP fetch failed. ``transient`` says whether trying again later may help."""

    def __init__(
        self, message: str, *, transient: bool = False, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


class StoreError(KupError):
    """The vector store could not be reached or refused an operation."""


class InputError(KupError):
    """A user's argument is unusable (an empty query, a date that does not parse)."""
