"""aurora_sim: a small, tested simulator of Amazon Aurora Serverless v1 for teaching its best practices.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0)]), duration_s=300, seed=7)
    >>> run.sql("SELECT max(capacity_acu) FROM metrics").fetchall()
    [(1,)]
"""

from .clients import ConnectionPool, ConnectPerRequest, DataApi, RetryPolicy
from .config import ClusterConfig, ModelAssumptions
from .manual_capacity import ModifyCurrentDBClusterCapacity
from .models import ProvisionedConfig, ServerlessV2Config
from .simulation import Run, simulate
from .workload import (
    AdvisoryLock,
    HoldCursor,
    IdleConnection,
    Listen,
    LongQuery,
    LongTransaction,
    Notify,
    TableLock,
    TemporaryTable,
    Workload,
)

__all__ = [
    "AdvisoryLock",
    "ClusterConfig",
    "ConnectPerRequest",
    "ConnectionPool",
    "DataApi",
    "HoldCursor",
    "IdleConnection",
    "Listen",
    "LongQuery",
    "LongTransaction",
    "ModelAssumptions",
    "ModifyCurrentDBClusterCapacity",
    "Notify",
    "ProvisionedConfig",
    "RetryPolicy",
    "Run",
    "ServerlessV2Config",
    "TableLock",
    "TemporaryTable",
    "Workload",
    "simulate",
]
__version__ = "0.1.0"
