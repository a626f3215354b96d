"""arq jobs: thin, idempotent, IDs only; they call services, never routes."""
