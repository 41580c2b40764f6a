FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md profiles.yml ./
COPY cli ./cli
COPY connections ./connections
COPY exporter ./exporter
COPY loader ./loader
COPY localpg ./localpg
COPY pipeline ./pipeline
COPY workload ./workload
COPY sql ./sql
COPY dbt_project ./dbt_project
RUN pip install --no-cache-dir -e .
CMD ["acme", "pipeline", "run", "--follow"]
