"""Every documented Aurora Serverless v1 number the simulator uses, each with its source.

A constant here is a fact, not a knob: what AWS never published lives in
``config.ModelAssumptions`` instead. ``SOURCES`` labels every constant:
``DOC`` (AWS documentation), ``API`` (API reference or SDK model), ``3P`` (third
party) or ``INF`` (inferred from the sources, stated nowhere); the origins point
into ``shared/reference/aurora_facts.md`` ("UG" is the archived Aurora User Guide).

Example:
    >>> CAPACITY_LADDER["aurora-postgresql"]
    (2, 4, 8, 16, 32, 64, 192, 384)
    >>> max_connections("aurora-mysql", 2)
    180
    >>> SOURCES["MAX_CONNECTIONS"].label
    'DOC'
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

# --- Engines and capacity -------------------------------------------------------------------------------------

ENGINES = ("aurora-mysql", "aurora-postgresql")
ENGINE_VERSIONS = MappingProxyType({"aurora-mysql": ("5.6", "5.7"), "aurora-postgresql": ("10", "11")})
DEFAULT_ENGINE_VERSION = MappingProxyType({"aurora-mysql": "5.7", "aurora-postgresql": "11"})

CAPACITY_LADDER = MappingProxyType(
    {
        "aurora-mysql": (1, 2, 4, 8, 16, 32, 64, 128, 256),
        "aurora-postgresql": (2, 4, 8, 16, 32, 64, 192, 384),
    }
)
GB_PER_ACU = 2

# --- Connections ----------------------------------------------------------------------------------------------

_MYSQL_MAX_CONNECTIONS = {1: 90, 2: 180, 4: 270, 8: 1000, 16: 2000, 32: 3000, 64: 4000, 128: 5000, 256: 6000}
# PostgreSQL v1 has no published table: the provisioned formula LEAST(memory / 9531392, 5000) on nominal memory.
_POSTGRESQL_MAX_CONNECTIONS = {
    acu: min(acu * GB_PER_ACU * 1024**3 // 9_531_392, 5000) for acu in CAPACITY_LADDER["aurora-postgresql"]
}
MAX_CONNECTIONS = MappingProxyType(
    {
        "aurora-mysql": MappingProxyType(_MYSQL_MAX_CONNECTIONS),
        "aurora-postgresql": MappingProxyType(_POSTGRESQL_MAX_CONNECTIONS),
    }
)
MAX_CONNECTION_AGE_S = 86_400

TOO_MANY_CONNECTIONS_ERROR = MappingProxyType(
    {
        "aurora-mysql": "ERROR 1040 (HY000): Too many connections",
        "aurora-postgresql": "FATAL: sorry, too many clients already",
    }
)

# --- Scaling --------------------------------------------------------------------------------------------------

SCALE_UP_CPU_PCT = 70.0
SCALE_UP_CONNECTIONS_PCT = 90.0
SCALE_DOWN_CPU_PCT = 30.0
SCALE_DOWN_CONNECTIONS_PCT = 40.0
SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S = 900
SCALE_DOWN_COOLDOWN_AFTER_SCALE_DOWN_S = 310

SECONDS_BEFORE_TIMEOUT_RANGE_S = (60, 600)
DEFAULT_SECONDS_BEFORE_TIMEOUT_S = 300
TIMEOUT_ACTIONS = ("RollbackCapacityChange", "ForceApplyCapacityChange")
DEFAULT_TIMEOUT_ACTION = "RollbackCapacityChange"

FORCED_SCALING_ERROR = MappingProxyType(
    {
        ("aurora-mysql", "5.6"): (
            "ERROR 1105 (HY000): The last transaction was aborted due to an unknown error. Please retry."
        ),
        ("aurora-mysql", "5.7"): (
            "ERROR 1105 (HY000): The last transaction was aborted due to Seamless Scaling. Please retry."
        ),
        ("aurora-postgresql", "10"): "FATAL: terminating connection due to administrator command",
        ("aurora-postgresql", "11"): "FATAL: terminating connection due to administrator command",
    }
)

# --- Engine parameters and timeouts ----------------------------------------------------------------------------

ENGINE_PARAMETERS = MappingProxyType({
    "aurora-postgresql": ("idle_in_transaction_session_timeout", "statement_timeout"),
    "aurora-mysql": ("max_execution_time",),
})
PARAMETER_MISSING_IN = MappingProxyType({"max_execution_time": ("aurora-mysql", "5.6")})
STATEMENT_TIMEOUT_ERROR = "ERROR: canceling statement due to statement timeout"
IDLE_IN_TRANSACTION_TIMEOUT_ERROR = "FATAL: terminating connection due to idle-in-transaction timeout"
MAX_EXECUTION_TIME_ERROR = (
    "ERROR 3024 (HY000): Query execution was interrupted, maximum statement execution time exceeded"
)
POSTGRESQL_ONLY_BLOCKERS = ("AdvisoryLock", "Listen", "Notify", "HoldCursor")

# --- Clients ----------------------------------------------------------------------------------------------------

GONE_AWAY_ERROR = MappingProxyType({
    "aurora-mysql": "ERROR 2006 (HY000): MySQL server has gone away",
    "aurora-postgresql": "server closed the connection unexpectedly",
})
POOL_TIMEOUT_ERROR = "PoolTimeout: couldn't get a connection after {seconds:.2f} sec"
DATA_API_RESUMING_ERROR = (
    "BadRequestException: Communications link failure\n\nThe last packet sent successfully to the server was 0 "
    "milliseconds ago. The driver has not received any packets from the server."
)
DATA_API_STATEMENT_TIMEOUT_ERROR = "StatementTimeoutException: Request timed out"
DATA_API_CALL_LIMIT_S = 45
DATA_API_WARM_CALL_S = 0.75
DATA_API_RESPONSE_LIMIT_BYTES = 1024 * 1024
DATA_API_ROW_LIMIT_BYTES = 64 * 1024
DATA_API_JSON_RESULT_LIMIT_BYTES = 10 * 1024 * 1024
DATA_API_REQUEST_LIMIT_BYTES = 4 * 1024 * 1024
DATA_API_MAX_PARAMETER_SETS = 1000
DATA_API_TRANSACTION_IDLE_S = 180
DATA_API_TRANSACTION_MAX_S = 86_400

# --- Retries ----------------------------------------------------------------------------------------------------

BACKOFF_CONCLUSION_QUOTE = ("The return on implementation complexity of using jittered backoff is huge, and it "
                            "should be considered a standard approach for remote clients")
RETRY_BUDGET_QUOTE = "each success could deposit 0.1 tokens, and each retry could consume 1 token"

# --- Pause and resume -----------------------------------------------------------------------------------------

SECONDS_UNTIL_AUTO_PAUSE_RANGE_S = (300, 86_400)
DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S = 300
# A cold SELECT 1 through the Data API, 113 samples (agostbiro/aurora-serverless-latencies, 2020-04-18).
MEASURED_RESUME_S = MappingProxyType({"median": 43.2, "p5": 30.7, "p95": 58.6, "min": 12.6, "max": 92.6})

# --- Events ---------------------------------------------------------------------------------------------------

RDS_EVENT_IDS = MappingProxyType(
    {
        "scale_started": "RDS-EVENT-0141",
        "scale_completed": "RDS-EVENT-0142",
        "scale_failed": "RDS-EVENT-0143",
        "pause_started": "RDS-EVENT-0144",
        "paused": "RDS-EVENT-0145",
        "pause_cancelled": "RDS-EVENT-0146",
        "resume_started": "RDS-EVENT-0147",
        "resumed": "RDS-EVENT-0148",
        "scale_forced": "RDS-EVENT-0149",
    }
)
RDS_EVENT_MESSAGES = MappingProxyType(
    {
        "scale_started": "Scaling DB cluster from {capacity_from} capacity units to {capacity_to} capacity units "
        "for this reason: {reason}",
        "scale_completed": "The DB cluster has scaled from {capacity_from} capacity units to {capacity_to} "
        "capacity units.",
        "scale_failed": "The DB cluster failed to scale from {capacity_from} capacity units to {capacity_to} "
        "capacity units for this reason: {reason}",
        "scale_forced": "The DB cluster has scaled from {capacity_from} capacity units to {capacity_to} capacity "
        "units, but scaling wasn't seamless.",
        "pause_started": "The DB cluster is being paused.",
        "paused": "The DB cluster is paused.",
        "pause_cancelled": "Pause was canceled for the DB cluster.",
        "resume_started": "The DB cluster is being resumed.",
        "resumed": "The DB cluster is resumed.",
    }
)

# --- Life cycle -----------------------------------------------------------------------------------------------

V1_NO_NEW_CLUSTERS_DATE = "2025-01-08"
V1_END_OF_LIFE_DATE = "2025-03-31"

# --- Prices (us-east-1) ---------------------------------------------------------------------------------------

PRICE_PER_ACU_HOUR_USD = 0.06
MIN_BILLED_S_PER_ACTIVATION = 300
PRICE_PER_ACU_HOUR_V2_USD = 0.12


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a status label and the document behind it."""

    label: str
    origin: str


SOURCES = MappingProxyType(
    {
        "ENGINES": Source("API", "API_ScalingConfiguration; UG aurora-serverless.create.md"),
        "ENGINE_VERSIONS": Source("DOC", "UG aurora-serverless.relnotes (MySQL 5.6/5.7; PostgreSQL 10/11)"),
        "DEFAULT_ENGINE_VERSION": Source("INF", "the newest v1 version of each engine"),
        "CAPACITY_LADDER": Source("API", "API_ScalingConfiguration; UG aurora-serverless.setting-capacity.md"),
        "GB_PER_ACU": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: 'approximately 2 gigabytes'"),
        "MAX_CONNECTIONS": Source(
            "DOC",
            "UG v1.how-it-works.md (MySQL 1/2/4/8/256 ACU); INF: MySQL 16-128 from the log2 formula and the v2 "
            "table; PostgreSQL from LEAST(memory/9531392, 5000)",
        ),
        "MAX_CONNECTION_AGE_S": Source("DOC", "UG aurora-serverless.md: closed if held open longer than one day"),
        "TOO_MANY_CONNECTIONS_ERROR": Source("DOC", "MySQL error 1040 ER_CON_COUNT_ERROR; PostgreSQL 53300"),
        "SCALE_UP_CPU_PCT": Source("DOC", "UG aurora-serverless.how-it-works.md @bd3bb28 (2018)"),
        "SCALE_UP_CONNECTIONS_PCT": Source("DOC", "UG aurora-serverless.how-it-works.md @bd3bb28 (2018)"),
        "SCALE_DOWN_CPU_PCT": Source("DOC", "UG aurora-serverless.how-it-works.md @bd3bb28 (2018)"),
        "SCALE_DOWN_CONNECTIONS_PCT": Source("DOC", "UG aurora-serverless.how-it-works.md @bd3bb28 (2018)"),
        "SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S": Source("DOC", "UG aurora-serverless.how-it-works.md @26f8b5c"),
        "SCALE_DOWN_COOLDOWN_AFTER_SCALE_DOWN_S": Source("DOC", "UG aurora-serverless.how-it-works.md @26f8b5c"),
        "SECONDS_BEFORE_TIMEOUT_RANGE_S": Source("API", "API_ScalingConfiguration: 60-600 for autoscaling"),
        "DEFAULT_SECONDS_BEFORE_TIMEOUT_S": Source("API", "API_ScalingConfiguration: default 300"),
        "TIMEOUT_ACTIONS": Source("API", "API_ScalingConfiguration TimeoutAction"),
        "DEFAULT_TIMEOUT_ACTION": Source("DOC", "UG setting-capacity.md: Rollback 'is the default behavior'"),
        "FORCED_SCALING_ERROR": Source(
            "DOC", "UG v1.how-it-works.md (MySQL texts, verbatim); INF: PostgreSQL uses the 57P01 text"
        ),
        "SECONDS_UNTIL_AUTO_PAUSE_RANGE_S": Source("API", "API_ScalingConfiguration SecondsUntilAutoPause"),
        "DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S": Source("DOC", "UG: 'the default inactivity time is five minutes'"),
        "MEASURED_RESUME_S": Source("3P", "agostbiro/aurora-serverless-latencies cold_starts.csv (113 samples)"),
        "RDS_EVENT_IDS": Source("DOC", "UG USER_Events.Messages.md"),
        "RDS_EVENT_MESSAGES": Source("DOC", "UG USER_Events.Messages.md (paraphrased where AWS gives no text)"),
        "V1_NO_NEW_CLUSTERS_DATE": Source("DOC", "UG setting-capacity page banner: no new v1 clusters since"),
        "V1_END_OF_LIFE_DATE": Source("DOC", "UG setting-capacity page banner: v1 end of life"),
        "ENGINE_PARAMETERS": Source("DOC", "postgresql.org runtime-config-client; dev.mysql.com max_execution_time"),
        "PARAMETER_MISSING_IN": Source("INF", "max_execution_time arrived in MySQL 5.7.8; Aurora MySQL 5.6 lacks it"),
        "STATEMENT_TIMEOUT_ERROR": Source("DOC", "PostgreSQL SQLSTATE 57014 message"),
        "IDLE_IN_TRANSACTION_TIMEOUT_ERROR": Source("DOC", "PostgreSQL SQLSTATE 25P03 message"),
        "MAX_EXECUTION_TIME_ERROR": Source("DOC", "MySQL error 3024 ER_QUERY_TIMEOUT"),
        "POSTGRESQL_ONLY_BLOCKERS": Source("DOC", "UG aurora-serverless.md limitations: advisory locks, LISTEN, "
                                           "NOTIFY, CURSOR WITH HOLD"),
        "GONE_AWAY_ERROR": Source("DOC", "MySQL client error 2006; libpq 'server closed the connection "
                                  "unexpectedly'"),
        "POOL_TIMEOUT_ERROR": Source("DOC", "psycopg_pool PoolTimeout message"),
        "DATA_API_RESUMING_ERROR": Source("3P", "aws/aws-sdk-js#2914, jeremydaly/data-api-client#11 (v1 paused)"),
        "DATA_API_STATEMENT_TIMEOUT_ERROR": Source("API", "botocore rds-data StatementTimeoutException"),
        "DATA_API_CALL_LIMIT_S": Source("DOC", "UG data-api.md: a call times out after 45 seconds"),
        "DATA_API_RESPONSE_LIMIT_BYTES": Source("DOC", "UG data-api.md: response size limit 1 MiB"),
        "DATA_API_ROW_LIMIT_BYTES": Source("DOC", "UG data-api.md: row size limit 64 KB"),
        "DATA_API_JSON_RESULT_LIMIT_BYTES": Source("DOC", "UG data-api.md: formattedRecords limit 10 MB"),
        "DATA_API_REQUEST_LIMIT_BYTES": Source("DOC", "UG data-api.md: HTTP request limit 4 MiB (batch)"),
        "DATA_API_MAX_PARAMETER_SETS": Source("DOC", "issue 4 / UG data-api.md: at most 1,000 parameter sets"),
        "DATA_API_TRANSACTION_IDLE_S": Source("API", "BeginTransaction: times out if unused for three minutes"),
        "DATA_API_TRANSACTION_MAX_S": Source("API", "BeginTransaction: a transaction can run for at most 24 hours"),
        "DATA_API_WARM_CALL_S": Source("3P", "agostbiro/aurora-serverless-latencies: warm median 0.75 s from "
                                       "Lambda"),
        "BACKOFF_CONCLUSION_QUOTE": Source("3P", "pypi backoff-simulator quoting Brooker 2015 (AWS Architecture "
                                           "Blog)"),
        "RETRY_BUDGET_QUOTE": Source("3P", "jmason.ie quoting brooker.co.za (2022)"),
        "PRICE_PER_ACU_HOUR_USD": Source("3P", "takayukii.me quoting the AWS pricing page (2018), us-east-1"),
        "MIN_BILLED_S_PER_ACTIVATION": Source("3P", "AWS FAQ line quoted by takayukii.me (2018), unverified"),
        "PRICE_PER_ACU_HOUR_V2_USD": Source("3P", "c3x.dev, factualminds (v2, us-east-1)"),
    }
)


def max_connections(engine: str, capacity_acu: int) -> int:
    """The ``max_connections`` of a cluster at ``capacity_acu``; while paused (0) the lowest rung's value.

    Example:
        >>> max_connections("aurora-mysql", 0)
        90
    """
    table = MAX_CONNECTIONS[engine]
    if capacity_acu == 0:
        return table[CAPACITY_LADDER[engine][0]]
    return table[capacity_acu]


def next_rung(engine: str, capacity_acu: int, direction: int) -> int | None:
    """The rung one step up (``direction=+1``) or down (``-1``) the engine's ladder, or None at its end.

    Example:
        >>> next_rung("aurora-postgresql", 64, +1)
        192
        >>> next_rung("aurora-mysql", 1, -1) is None
        True
    """
    ladder = CAPACITY_LADDER[engine]
    index = ladder.index(capacity_acu) + direction
    return ladder[index] if 0 <= index < len(ladder) else None
