"""The memory floor: the loader's and the CLI's imports, and nothing done with them."""

import cli.main  # noqa: F401
import loader.copy_changes  # noqa: F401
