"""One exception type per kind of failure; the CLI turns each into one clear line."""


class AcmeError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do."""


class ConfigurationError(AcmeError):
    """No database is configured, or a setting is malformed."""


class DatabaseUnavailable(AcmeError):
    """A database cannot be reached or refuses the credentials."""


class LocalServerError(AcmeError):
    """A local PostgreSQL server cannot be initialised, started or stopped."""


class CaptureNotInstalled(AcmeError):
    """The change log or its triggers are missing on finance_db."""


class PipelineError(AcmeError):
    """The loader or the dbt build cannot go on."""


class LoaderBusy(PipelineError):
    """Another loader holds analytics_db's loader lock; waiting and retrying is right."""


class SourceReplaced(PipelineError):
    """finance_db is not the server the watermark was taken from."""


class ChangesPruned(PipelineError):
    """Changes the warehouse has not landed were pruned from the change log."""


class ExportError(AcmeError):
    """A report cannot be exported to the requested file."""
