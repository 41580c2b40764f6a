# The data-pipeline image: the `acme` command with the SQL and dbt project it runs.
# docker-compose.yml builds it; tests/test_deployment.py checks what it copies.
# PYTHON_IMAGE: another Python 3.11 image to build on, such as the stand-in that
# deploy/offline/build-images.sh builds where no registry is reachable.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

# The uid the pipeline runs as. It writes CSVs into the bind-mounted data-exports/, so it
# should be the host user's uid (compose passes ACME_UID from .env).
ARG ACME_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    ACME_HOME=/var/lib/acme

WORKDIR /app

# Dependencies from pyproject.toml alone, so that changing the code does not reinstall dbt.
COPY pyproject.toml ./
RUN python -c "import tomllib; \
project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(project['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md profiles.yml ./
COPY cli ./cli
COPY connections ./connections
COPY exporter ./exporter
COPY loader ./loader
COPY localpg ./localpg
COPY monitoring ./monitoring
COPY pipeline ./pipeline
COPY reconcile ./reconcile
COPY workload ./workload
COPY sql ./sql
COPY dbt_project ./dbt_project

# Editable, because the code finds sql/, dbt_project/ and profiles.yml beside its packages
# (connections.settings.PROJECT_ROOT); from site-packages it would look for them there.
# Byte-compiled now, because the code stays root-owned: the pipeline writes only its state
# (ACME_HOME: dbt's target and logs) and the export folder.
RUN pip install --no-deps -e . \
    && python -m compileall -q /app \
    && useradd --uid "$ACME_UID" --user-group --create-home --shell /usr/sbin/nologin acme \
    && mkdir -p "$ACME_HOME" /app/data-exports \
    && chown acme:acme "$ACME_HOME" /app/data-exports

USER acme

CMD ["acme", "pipeline", "run", "--follow"]
