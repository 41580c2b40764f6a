"""Two PostgreSQL servers owned by the project, for the demo, development and the tests."""
