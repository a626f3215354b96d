"""Business rules. Services never import `server`; they raise `ServiceError`s with stable codes."""
