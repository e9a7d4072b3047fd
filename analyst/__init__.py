"""The analyst layer: DuckDB views over committed output, and the query, shell and report commands."""
