"""One exception type per kind of failure; the CLI turns each into one clear line."""

import re

# The severity a PostgreSQL server puts before its message.
SEVERITY = re.compile(r"^(ERROR|FATAL|PANIC):\s*")


class AcmeError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do."""


class ConfigurationError(AcmeError):
    """No database is configured, or a setting is malformed."""


class DatabaseUnavailable(AcmeError):
    """A database cannot be reached (down, restarting, unreachable): waiting may cure it."""


class CredentialsRefused(AcmeError):
    """A database refuses the user or password, or the database does not exist: waiting
    cures nothing, so --follow stops on it instead of retrying."""


class LocalServerError(AcmeError):
    """A local PostgreSQL server cannot be initialised, started or stopped."""


class CaptureNotInstalled(AcmeError):
    """The change log or its triggers are missing on finance_db."""


class PipelineError(AcmeError):
    """The loader or the dbt build cannot go on."""


class BuildFailed(PipelineError):
    """dbt could not parse, build or test the warehouse (a failing test, a broken model, or
    the database lost under it: the cycle tells which, pipeline/cycle.py)."""


class LoaderBusy(PipelineError):
    """Another loader holds analytics_db's loader lock; waiting and retrying is right."""


class SourceReplaced(PipelineError):
    """finance_db is not the server the watermark was taken from."""


class SourceRewound(PipelineError):
    """finance_db went back in time (a restore) behind what the warehouse has landed."""


class CaptureIncomplete(PipelineError):
    """A capture trigger is missing or disabled, so writes may pass uncaptured."""


class SchemaMismatch(PipelineError):
    """A source column was renamed, dropped or retyped beyond what the models can hold."""


class ChangesPruned(PipelineError):
    """Changes the warehouse has not landed were pruned from the change log."""


class ExportError(AcmeError):
    """A report cannot be exported to the requested file."""


def first_line(exc: BaseException) -> str:
    """What a one-line message quotes of an error: the first line of its text (for a
    server's error, without PostgreSQL's severity prefix), or its type when it has none."""
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    if not text:
        return type(exc).__name__
    return SEVERITY.sub("", text.splitlines()[0]).strip()
