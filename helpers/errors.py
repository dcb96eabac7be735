"""The one exception type the workbook raises for problems a user can fix."""

from __future__ import annotations


class WorkbookError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    The command line prints ``str(error)`` as a single line and exits non-zero; notebooks show it
    as-is. Code raising it must put *what* is wrong and *how to fix it* into the message.
    """


class DataUnavailableError(WorkbookError):
    """A registered file is in neither the data pack, the cache, nor reachable online."""


class ChecksumError(WorkbookError):
    """A file's sha256 differs from the one it must have; the bad copy has been deleted."""
