"""Every advisory lock the platform takes, in one place: two names for one
key, or one key for two purposes, is how two processes end up not excluding each other."""

from __future__ import annotations

from connections.dbt_project import acme_vars

# One loader at a time per warehouse (loader/copy_changes.py), taken with try: a second
# loader is told another one runs.
LOADER_LOCK_KEY = 7_316_001

# One acme dbt invocation at a time per warehouse (pipeline/dbt_build.py), waited for: two
# full builds at once would replace the same views and share dbt's target folder.
BUILD_LOCK_KEY = 7_316_002

# One `acme capture prune` at a time per change log, taken with try in finance_db
# (loader/prune.py): two would open the same segment or drop the same partition.
PRUNE_LOCK_KEY = 7_316_004

# Per model, (MODEL_LOCK_CLASS, hashtext(model name)), taken by the dbt project itself in the
# model's transaction (macros/cdc_build_range.sql), so dbt run by hand takes it too. The
# project states the class (var model_lock_class); read here for status and tests.
MODEL_LOCK_CLASS: int = acme_vars()["model_lock_class"]
