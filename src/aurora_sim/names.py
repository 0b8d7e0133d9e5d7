"""The names a run's tables use — cluster states, event kinds, table names — defined once for model, plots and checks.

Example:
    >>> SCALE_FAILED in EVENT_KINDS, PAUSED in STATES
    (True, True)
"""

from __future__ import annotations

ACTIVE, SCALING, PAUSED, RESUMING = "active", "scaling", "paused", "resuming"
STATES = (ACTIVE, SCALING, PAUSED, RESUMING)

SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED = "scale_started", "scaling_point_found", "scale_completed"
SCALE_FAILED, SCALE_FORCED = "scale_failed", "scale_forced"
TRANSACTION_ABORTED, CONNECTION_CLOSED = "transaction_aborted", "connection_closed"
PAUSE_STARTED, PAUSED_EVENT, PAUSE_CANCELLED = "pause_started", "paused", "pause_cancelled"
RESUME_STARTED, RESUMED = "resume_started", "resumed"
EVENT_KINDS = (SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED, SCALE_FAILED, SCALE_FORCED, TRANSACTION_ABORTED,
               CONNECTION_CLOSED, PAUSE_STARTED, PAUSED_EVENT, PAUSE_CANCELLED, RESUME_STARTED, RESUMED)

OK, ERROR, TIMEOUT = "ok", "error", "timeout"  # request outcomes
TABLES = ("metrics", "events", "requests", "capacity")
