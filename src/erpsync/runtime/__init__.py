"""How flows run: ``queue`` (huey backends, queues ``amazon`` and ``sage500``), ``jobs`` (named jobs, retries,
workers), ``retry`` (backoff policy), ``store`` (the state store and its Alembic migrations), ``deadletter``
(capture, replay, discard) and ``health`` (the checks behind ``erpsync check``)."""
