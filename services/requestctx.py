"""What a service may know of the request it serves without importing `server`: its id and the
client's address, set by the HTTP middleware (and the request id by a job from its enqueuer)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("zonehub_request_id", default=None)
client_address: ContextVar[str | None] = ContextVar("zonehub_client_address", default=None)
job: ContextVar[str | None] = ContextVar("zonehub_job", default=None)  # "name:job id" in a worker
