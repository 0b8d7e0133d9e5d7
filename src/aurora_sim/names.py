"""The names a run's tables use — cluster states, event kinds, table names — defined once for model, plots and checks.

Example:
    >>> SCALE_FAILED in EVENT_KINDS, PAUSED in STATES
    (True, True)
"""

from __future__ import annotations

ACTIVE, SCALING, PAUSED, RESUMING = "active", "scaling", "paused", "resuming"
FAILING_OVER = "failing_over"  # no DB instance: a fault (faults.py) took it, a replacement is on its way
STATES = (ACTIVE, SCALING, PAUSED, RESUMING, FAILING_OVER)

SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED = "scale_started", "scaling_point_found", "scale_completed"
SCALE_FAILED, SCALE_FORCED = "scale_failed", "scale_forced"
TRANSACTION_ABORTED, CONNECTION_CLOSED = "transaction_aborted", "connection_closed"
PAUSE_STARTED, PAUSED_EVENT, PAUSE_CANCELLED = "pause_started", "paused", "pause_cancelled"
RESUME_STARTED, RESUMED = "resume_started", "resumed"
INSTANCE_FAILED, FAILOVER_STARTED = "instance_failed", "failover_started"  # faults.py: the instance is lost …
ENDPOINT_MOVED, FAILOVER_COMPLETED = "endpoint_moved", "failover_completed"  # … and a replacement takes over
MAINTENANCE_PENDING, MAINTENANCE_APPLIED = "maintenance_pending", "maintenance_applied"  # maintenance.py (notebook 10)
EVENT_KINDS = (SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED, SCALE_FAILED, SCALE_FORCED, TRANSACTION_ABORTED,
               CONNECTION_CLOSED, PAUSE_STARTED, PAUSED_EVENT, PAUSE_CANCELLED, RESUME_STARTED, RESUMED,
               INSTANCE_FAILED, FAILOVER_STARTED, ENDPOINT_MOVED, FAILOVER_COMPLETED, MAINTENANCE_PENDING,
               MAINTENANCE_APPLIED)

OK, ERROR, TIMEOUT = "ok", "error", "timeout"  # request outcomes
TABLES = ("metrics", "events", "requests", "capacity")
