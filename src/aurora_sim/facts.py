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
    >>> max_connections_label("aurora-mysql", 2), max_connections_label("aurora-postgresql", 2)
    ('DOC', 'INF')
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only for the reading tables at the end, imported when one is asked for
    import pandas as pd

# --- Engines and capacity -------------------------------------------------------------------------------------

ENGINES = ("aurora-mysql", "aurora-postgresql")
ENGINE_VERSIONS = MappingProxyType({"aurora-mysql": ("5.6", "5.7"), "aurora-postgresql": ("10", "11", "13")})
# The release behind each choice, as the User Guide's v1 availability table names it.
ENGINE_VERSION_RELEASES = MappingProxyType({
    "aurora-mysql": MappingProxyType({"5.6": "5.6 (Aurora MySQL version 1)", "5.7": "5.7 (Aurora MySQL version 2)"}),
    "aurora-postgresql": MappingProxyType({"10": "10.21", "11": "11.16", "13": "13.9"}),
})
DEFAULT_ENGINE_VERSION = MappingProxyType({"aurora-mysql": "5.7", "aurora-postgresql": "13"})

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
# Which max_connections values a source states (DOC) and which are inferred (INF): see max_connections_label.
_DOCUMENTED_MAX_CONNECTIONS_ACU = MappingProxyType({"aurora-mysql": (0, 1, 2, 4, 8, 256), "aurora-postgresql": ()})
MAX_CONNECTION_AGE_S = 86_400

# What an application (not a superuser) sees when the cluster refuses its connection. PostgreSQL keeps the last
# superuser_reserved_connections slots of max_connections for superusers, so an application is refused that many
# connections before max_connections, with the 53300 text of PostgreSQL 10 to 15 (16 reworded it).
TOO_MANY_CONNECTIONS_ERROR = MappingProxyType(
    {
        "aurora-mysql": "ERROR 1040 (HY000): Too many connections",
        "aurora-postgresql": "FATAL: remaining connection slots are reserved for non-replication superuser connections",
    }
)
SUPERUSER_RESERVED_CONNECTIONS = 3
POSTGRESQL_TOO_MANY_CLIENTS_ERROR = "FATAL: sorry, too many clients already"  # what a superuser sees at the limit

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
        ("aurora-postgresql", "13"): "FATAL: terminating connection due to administrator command",
    }
)
# The seed blog on ForceApplyCapacityChange; the rollback's length is ModelAssumptions.rollback_s_per_transaction_s.
FORCED_SCALING_ROLLBACK_QUOTE = "you must complete a proper rollback first, which can take significant time"

# --- Engine parameters and timeouts ----------------------------------------------------------------------------

ENGINE_PARAMETERS = MappingProxyType({
    "aurora-postgresql": ("idle_in_transaction_session_timeout", "statement_timeout"),
    "aurora-mysql": ("max_execution_time",),
})
PARAMETER_MISSING_IN = MappingProxyType({"max_execution_time": ("aurora-mysql", "5.6")})
# The largest value each engine accepts, in milliseconds (0 disables): PostgreSQL's are C ints (INT_MAX), MySQL's
# max_execution_time an unsigned 32-bit value.
ENGINE_PARAMETER_MAX_MS = MappingProxyType({"idle_in_transaction_session_timeout": 2_147_483_647,
                                           "statement_timeout": 2_147_483_647, "max_execution_time": 4_294_967_295})
STATEMENT_TIMEOUT_ERROR = "ERROR: canceling statement due to statement timeout"
IDLE_IN_TRANSACTION_TIMEOUT_ERROR = "FATAL: terminating connection due to idle-in-transaction timeout"
MAX_EXECUTION_TIME_ERROR = (
    "ERROR 3024 (HY000): Query execution was interrupted, maximum statement execution time exceeded"
)
# PostgreSQL-only operations the model lets block a scaling point. The User Guide documents only NOTIFY as
# preventing scaling; it calls advisory locks, LISTEN and cursors WITH HOLD "not recommended".
POSTGRESQL_ONLY_BLOCKERS = ("AdvisoryLock", "Listen", "Notify", "HoldCursor")
DOCUMENTED_POSTGRESQL_BLOCKERS = ("Notify",)
# The log types the RDS API exports to CloudWatch Logs from an Aurora cluster (EnableLogTypes): on Aurora PostgreSQL
# one log holds everything. A v1 cluster chooses none: it uploads whichever logs its parameters turn on (LOG_TYPES).
CLOUDWATCH_LOGS_EXPORTS = MappingProxyType({"aurora-mysql": ("audit", "error", "general", "slowquery"),
                                            "aurora-postgresql": ("postgresql",)})

# --- Clients ----------------------------------------------------------------------------------------------------

GONE_AWAY_ERROR = MappingProxyType({
    "aurora-mysql": "ERROR 2006 (HY000): MySQL server has gone away",
    "aurora-postgresql": "server closed the connection unexpectedly",
})
POOL_TIMEOUT_ERROR = "PoolTimeout: couldn't get a connection after {seconds:.2f} sec"
# A statement cut off because the server went away under it (the instance failed), and a new connection to an
# endpoint with no server behind it (engine client manuals; what a client sees while the instance is replaced).
LOST_CONNECTION_ERROR = MappingProxyType({
    "aurora-mysql": "ERROR 2013 (HY000): Lost connection to MySQL server during query",
    "aurora-postgresql": "server closed the connection unexpectedly",
})
CANNOT_CONNECT_ERROR = MappingProxyType({
    "aurora-mysql": "ERROR 2003 (HY000): Can't connect to MySQL server on '<cluster endpoint>:3306' (111)",
    "aurora-postgresql": "could not connect to server: Connection refused",
})
DATA_API_RESUMING_ERROR = (
    "BadRequestException: Communications link failure\n\nThe last packet sent successfully to the server was 0 "
    "milliseconds ago. The driver has not received any packets from the server."
)
DATA_API_STATEMENT_TIMEOUT_ERROR = "StatementTimeoutException: Request timed out"
DATA_API_CALL_LIMIT_S = 45
# Single-row SELECTs through the Data API from Lambda on an awake cluster (138 calls): median and range.
DATA_API_WARM_CALL_S = 0.0145
DATA_API_WARM_CALL_RANGE_S = (0.0108, 0.0265)
# The first call of a Lambda invocation that found the cluster awake (SDK set-up, TLS, credentials): median of 25.
DATA_API_FIRST_CALL_S = 0.75
DATA_API_RESPONSE_LIMIT_BYTES = 1024 * 1024
DATA_API_ROW_LIMIT_BYTES = 64 * 1024
DATA_API_JSON_RESULT_LIMIT_BYTES = 10 * 1024 * 1024
DATA_API_REQUEST_LIMIT_BYTES = 4 * 1024 * 1024
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
# The seed blog gives no number; the measurements above are what the model draws from.
RESUME_SEED_QUOTE = ("Resuming the cluster takes a few seconds and in some cases can be longer based on variables "
                     "such as your ACU, storage size, and more")

# --- Failover (v1: one DB instance in one Availability Zone) --------------------------------------------------

FAILOVER_BEST_EFFORT_QUOTE = "best effort only, subject to capacity availability"
FAILOVER_TIME_QUOTE = "failover time is undefined because it depends on demand and capacity availability"
FAILOVER_TIME_S = None  # AWS publishes no failover or replacement time for v1: every duration is an assumption

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
        "units, but scaling wasn't seamless for this reason: {reason}.",
        "pause_started": "The DB cluster is being paused.",
        "paused": "The DB cluster is paused.",
        "pause_cancelled": "Pause was canceled for the DB cluster.",
        "resume_started": "The DB cluster is being resumed.",
        "resumed": "The DB cluster is resumed.",
    }
)

# --- Monitoring: CloudWatch metrics and alarms, engine logs ------------------------------------------------------

CLOUDWATCH_NAMESPACE = "AWS/RDS"
CLOUDWATCH_DIMENSION = "DBClusterIdentifier"
# The v1 metrics a run can answer for, with the unit CloudWatch gives them; Queries is Aurora MySQL's only.
CLOUDWATCH_METRICS = MappingProxyType({
    "ServerlessDatabaseCapacity": "Count",
    "CPUUtilization": "Percent",
    "DatabaseConnections": "Count",
    "Queries": "Count/Second",
})
MYSQL_ONLY_METRICS = ("Queries",)
# What a paused cluster still publishes (its capacity, 0); its engine metrics stop, as no engine runs.
METRICS_PUBLISHED_WHILE_PAUSED = ("ServerlessDatabaseCapacity",)
METRIC_PUBLISH_PERIOD_S = 60
METRIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
ALARM_COMPARISONS = MappingProxyType({
    "GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<", "LessThanOrEqualToThreshold": "<=",
})
TREAT_MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")
DEFAULT_TREAT_MISSING_DATA = "missing"
ALARM_MAX_EVALUATION_S = 86_400  # evaluation periods × period
# How many datapoints an alarm retrieves beyond its evaluation periods (the evaluation range); AWS's example
# retrieves 5 for 3 evaluation periods and gives no rule.
ALARM_EXTRA_DATAPOINTS = 2

# Log types: the CloudWatch Logs group of each is /aws/rds/cluster/<cluster>/<log type>.
LOG_GROUP_TEMPLATE = "/aws/rds/cluster/{cluster}/{log_type}"
LOG_TYPES = MappingProxyType({"aurora-mysql": ("error", "general", "slowquery", "audit"),
                              "aurora-postgresql": ("error",)})
LOG_PARAMETERS = MappingProxyType({
    "aurora-mysql": ("slow_query_log", "long_query_time", "log_queries_not_using_indexes", "general_log",
                     "server_audit_logging", "server_audit_events"),
    "aurora-postgresql": ("log_min_duration_statement", "log_statement", "log_lock_waits", "deadlock_timeout",
                          "log_temp_files", "log_autovacuum_min_duration", "log_connections",
                          "log_disconnections"),
})
ALWAYS_ON_LOG_PARAMETERS = MappingProxyType({"aurora-postgresql": ("log_connections", "log_disconnections")})
LONG_QUERY_TIME_RANGE_S = (0, 31_536_000)
DEFAULT_LONG_QUERY_TIME_S = 10.0
SERVER_AUDIT_EVENTS = ("CONNECT", "QUERY", "QUERY_DCL", "QUERY_DDL", "QUERY_DML", "TABLE")
LOG_STATEMENT_VALUES = ("none", "ddl", "mod", "all")
DEFAULT_DEADLOCK_TIMEOUT_MS = 1000

# --- Security (notebook 10) -----------------------------------------------------------------------------------

TLS_VERSIONS = ("1.0", "1.1", "1.2")  # the TLS versions a v1 cluster accepts: 1.2 is its ceiling
# libpq's sslmode → the MySQL client's --ssl-mode, paired as the User Guide's table pairs them
TLS_MODES = MappingProxyType({"disable": "DISABLED", "prefer": "PREFERRED", "require": "REQUIRED",
                              "verify-ca": "VERIFY_CA", "verify-full": "VERIFY_IDENTITY"})
DEFAULT_TLS_MODE = "prefer"  # psql's default
TLS_TERMINATION_QUOTE = "The TLS/SSL connection terminates at the router fleet"
TLS_ENFORCING_PARAMETERS = MappingProxyType({"aurora-mysql": "require_secure_transport",
                                             "aurora-postgresql": "force_ssl"})
STORAGE_ENCRYPTION_QUOTE = ("the cluster volume is always encrypted. You can choose the encryption key, but you can't "
                            "disable encryption")
SNAPSHOT_SHARING_QUOTE = ("To copy or share a snapshot of an Aurora Serverless v1 cluster, encrypt the snapshot using "
                          "your own AWS KMS key")
NO_PUBLIC_IP_QUOTE = "You can't give an Aurora Serverless v1 DB cluster a public IP address"
V1_UNSUPPORTED_AUTHENTICATION = ("IAM database authentication", "Kerberos authentication")
# Maintenance waits for a scaling point for up to seven days; then it is applied with ForceApplyCapacityChange.
MAINTENANCE_SEARCH_DAYS = 7
MAINTENANCE_FORCE_QUOTE = ("the date at which scaling will be applied with the ForceApplyCapacityChange timeout action "
                           "to apply the maintenance, regardless of the ScalingConfiguration settings")

# --- Life cycle -----------------------------------------------------------------------------------------------

V1_NO_NEW_CLUSTERS_DATE = "2025-01-08"
V1_END_OF_LIFE_DATE = "2025-03-31"

# --- Prices (us-east-1) ---------------------------------------------------------------------------------------

PRICE_PER_ACU_HOUR_USD = 0.06
MIN_BILLED_S_PER_ACTIVATION = 300
PRICE_PER_ACU_HOUR_V2_USD = 0.12
PROVISIONED_MIN_BILLED_S = 600  # a provisioned instance: per second, at least 10 minutes

# --- Aurora Serverless v2 and provisioned instances, for the capstone's comparison -------------------------------

V2_CAPACITY_STEP_ACU = 0.5
V2_LOWEST_RUNNING_ACU = 0.5  # the smallest minimum without auto-pause; 0 turns auto-pause on
V2_MAX_CAPACITY_ACU = 256
V2_SECONDS_UNTIL_AUTO_PAUSE_RANGE_S = (300, 86_400)
V2_DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S = 300
V2_RESUME_UP_TO_S = 15
# max_connections of a v2 instance by its *maximum* capacity (the User Guide's table; between rows, the row below).
V2_MAX_CONNECTIONS = MappingProxyType({
    "aurora-mysql": MappingProxyType({1: 90, 4: 135, 8: 1000, 16: 2000, 32: 3000, 64: 4000, 128: 5000}),
    "aurora-postgresql": MappingProxyType({1: 189, 4: 823, 8: 1669, 16: 3360, 32: 5000}),
})
# The instance class the User Guide recommends when a v1 cluster of this maximum capacity becomes provisioned.
PROVISIONED_CLASS_FOR_ACU = MappingProxyType({
    1: "db.t3.small", 2: "db.t3.medium", 4: "db.t3.large", 8: "db.r5.large", 16: "db.r5.xlarge",
    32: "db.r5.2xlarge", 64: "db.r5.4xlarge", 128: "db.r5.8xlarge", 192: "db.r5.12xlarge", 256: "db.r5.16xlarge",
    384: "db.r5.24xlarge",
})

# --- ModifyCurrentDBClusterCapacity: the manual capacity change of a v1 cluster ----------------------------------

MANUAL_SECONDS_BEFORE_TIMEOUT_RANGE_S = (10, 600)
MANUAL_DEFAULT_SECONDS_BEFORE_TIMEOUT_S = 300
MANUAL_DEFAULT_TIMEOUT_ACTION = "ForceApplyCapacityChange"


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a status label and the document behind it."""

    label: str
    origin: str


SOURCES = MappingProxyType(
    {
        "ENGINES": Source("API", "API_ScalingConfiguration; UG aurora-serverless.create.md"),
        "ENGINE_VERSIONS": Source("DOC", "UG Concepts.Aurora_Fea_Regions_DB-eng.Feature.ServerlessV1.md @7a931b4 "
                                  "(MySQL 5.6/5.7; PostgreSQL 10, 11, 13; the relnotes page listing 10/11 is stale)"),
        "ENGINE_VERSION_RELEASES": Source("DOC", "UG Concepts.Aurora_Fea_Regions_DB-eng.Feature.ServerlessV1.md "
                                          "@7a931b4: Aurora MySQL versions 1 and 2; PostgreSQL 10.21, 11.16, 13.9"),
        "DEFAULT_ENGINE_VERSION": Source("INF", "the newest v1 version of each engine"),
        "CAPACITY_LADDER": Source("API", "API_ScalingConfiguration; UG aurora-serverless.setting-capacity.md"),
        "GB_PER_ACU": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: 'approximately 2 gigabytes'"),
        "MAX_CONNECTIONS": Source(
            "INF",
            "mixed, per value: max_connections_label(engine, acu). DOC: UG v1.how-it-works.md (MySQL 1/2/4/8/256 "
            "ACU). INF: MySQL 16-128 from the log2 formula and the v2 table; every PostgreSQL value from the "
            "provisioned formula LEAST(memory/9531392, 5000) (AWS publishes no v1 PostgreSQL table)",
        ),
        "MAX_CONNECTION_AGE_S": Source("DOC", "UG aurora-serverless.md: closed if held open longer than one day"),
        "TOO_MANY_CONNECTIONS_ERROR": Source("DOC", "MySQL error 1040 ER_CON_COUNT_ERROR; PostgreSQL 53300 for a "
                                             "non-superuser (postinit.c, PostgreSQL 10-15)"),
        "SUPERUSER_RESERVED_CONNECTIONS": Source("DOC", "PostgreSQL manual, runtime-config-connection: "
                                                 "superuser_reserved_connections, 'The default value is three "
                                                 "connections'"),
        "POSTGRESQL_TOO_MANY_CLIENTS_ERROR": Source("DOC", "PostgreSQL 53300 when every slot is taken (what a "
                                                    "superuser sees)"),
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
        "FORCED_SCALING_ROLLBACK_QUOTE": Source("DOC", "AWS Database Blog, Best practices for working with Amazon "
                                                "Aurora Serverless (the seed)"),
        "SECONDS_UNTIL_AUTO_PAUSE_RANGE_S": Source("API", "API_ScalingConfiguration SecondsUntilAutoPause"),
        "DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S": Source("DOC", "UG: 'the default inactivity time is five minutes'"),
        "MEASURED_RESUME_S": Source("3P", "agostbiro/aurora-serverless-latencies cold_starts.csv (113 samples)"),
        "RESUME_SEED_QUOTE": Source("DOC", "AWS Database Blog, Best practices for working with Amazon Aurora "
                                    "Serverless (the seed)"),
        "RDS_EVENT_IDS": Source("DOC", "UG USER_Events.Messages.md"),
        "RDS_EVENT_MESSAGES": Source("DOC", "UG USER_Events.Messages.md (0149 ends 'for this reason: reason'; "
                                     "paraphrased where AWS gives no text)"),
        "V1_NO_NEW_CLUSTERS_DATE": Source("DOC", "UG setting-capacity page banner: no new v1 clusters since"),
        "V1_END_OF_LIFE_DATE": Source("DOC", "UG setting-capacity page banner: v1 end of life"),
        "ENGINE_PARAMETERS": Source("DOC", "postgresql.org runtime-config-client; dev.mysql.com max_execution_time"),
        "PARAMETER_MISSING_IN": Source("INF", "max_execution_time arrived in MySQL 5.7.8; Aurora MySQL 5.6 lacks it"),
        "ENGINE_PARAMETER_MAX_MS": Source("DOC", "PostgreSQL guc.c/pg_settings: statement_timeout and "
                                          "idle_in_transaction_session_timeout 0..INT_MAX (2147483647) ms; MySQL 5.7 "
                                          "manual, max_execution_time: Maximum Value 4294967295"),
        "STATEMENT_TIMEOUT_ERROR": Source("DOC", "PostgreSQL SQLSTATE 57014 message"),
        "IDLE_IN_TRANSACTION_TIMEOUT_ERROR": Source("DOC", "PostgreSQL SQLSTATE 25P03 message"),
        "MAX_EXECUTION_TIME_ERROR": Source("DOC", "MySQL error 3024 ER_QUERY_TIMEOUT"),
        "POSTGRESQL_ONLY_BLOCKERS": Source("INF", "UG aurora-serverless.md limitations call advisory locks, "
                                           "LISTEN and CURSOR WITH HOLD 'not recommended'; that they block scaling "
                                           "is the model's inference (only NOTIFY is documented)"),
        "DOCUMENTED_POSTGRESQL_BLOCKERS": Source("DOC", "UG aurora-serverless.md limitations: 'NOTIFY commands "
                                                 "prevent scaling'"),
        "CLOUDWATCH_LOGS_EXPORTS": Source("API", "RDS CloudwatchLogsExportConfiguration EnableLogTypes: 'Aurora "
                                          "MySQL - audit | error | general | slowquery; Aurora PostgreSQL - "
                                          "postgresql'; UG AuroraPostgreSQL.CloudWatch.md: 'only postgresql logs "
                                          "can be published'"),
        "GONE_AWAY_ERROR": Source("DOC", "MySQL client error 2006; libpq 'server closed the connection "
                                  "unexpectedly'"),
        "POOL_TIMEOUT_ERROR": Source("DOC", "psycopg_pool PoolTimeout message"),
        "LOST_CONNECTION_ERROR": Source("DOC", "MySQL client error 2013 CR_SERVER_LOST; libpq 'server closed the "
                                        "connection unexpectedly'"),
        "CANNOT_CONNECT_ERROR": Source("DOC", "MySQL client error 2003 CR_CONN_HOST_ERROR (host and errno filled "
                                       "in: 111 = connection refused); libpq before 14 (14+: 'connection to server "
                                       "at …, port 5432 failed: Connection refused')"),
        "FAILOVER_BEST_EFFORT_QUOTE": Source("DOC", "UG aurora-serverless-v2.upgrade.md (v1 vs v2 table): "
                                             "failover 'best effort only, subject to capacity availability'"),
        "FAILOVER_TIME_QUOTE": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: v1 recreates the DB "
                                      "instance in a different AZ; failover takes longer than provisioned"),
        "FAILOVER_TIME_S": Source("DOC", "none published (fact sheet §7): faults.FaultAssumptions names the "
                                  "model's durations"),
        "DATA_API_RESUMING_ERROR": Source("3P", "aws/aws-sdk-js#2914, jeremydaly/data-api-client#11 (v1 paused)"),
        "DATA_API_STATEMENT_TIMEOUT_ERROR": Source("API", "botocore rds-data StatementTimeoutException"),
        "DATA_API_CALL_LIMIT_S": Source("DOC", "UG data-api.md: a call times out after 45 seconds"),
        "DATA_API_RESPONSE_LIMIT_BYTES": Source("DOC", "UG data-api.md: response size limit 1 MiB"),
        "DATA_API_ROW_LIMIT_BYTES": Source("DOC", "UG data-api.md: row size limit 64 KB"),
        "DATA_API_JSON_RESULT_LIMIT_BYTES": Source("DOC", "UG data-api.md: formattedRecords limit 10 MB"),
        "DATA_API_REQUEST_LIMIT_BYTES": Source("DOC", "UG data-api.md: HTTP request limit 4 MiB (batch)"),
        "DATA_API_TRANSACTION_IDLE_S": Source("API", "BeginTransaction: times out if unused for three minutes"),
        "DATA_API_TRANSACTION_MAX_S": Source("API", "BeginTransaction: a transaction can run for at most 24 hours"),
        "DATA_API_WARM_CALL_S": Source("3P", "agostbiro/aurora-serverless-latencies data/2020-04-18/selects.csv: "
                                       "median of 138 single-row SELECTs from Lambda, 14.5 ms"),
        "DATA_API_WARM_CALL_RANGE_S": Source("3P", "agostbiro/aurora-serverless-latencies data/2020-04-18/"
                                             "selects.csv: 10.8-26.5 ms"),
        "DATA_API_FIRST_CALL_S": Source("3P", "agostbiro/aurora-serverless-latencies data/2020-04-18/"
                                        "cold_starts.csv: median of the 25 calls under 2 s (first call of a "
                                        "Lambda invocation on an awake cluster)"),
        "BACKOFF_CONCLUSION_QUOTE": Source("3P", "pypi backoff-simulator quoting Brooker 2015 (AWS Architecture "
                                           "Blog)"),
        "RETRY_BUDGET_QUOTE": Source("3P", "jmason.ie quoting brooker.co.za (2022)"),
        "PRICE_PER_ACU_HOUR_USD": Source("3P", "takayukii.me quoting the AWS pricing page (2018), us-east-1"),
        "MIN_BILLED_S_PER_ACTIVATION": Source("3P", "AWS FAQ line quoted by takayukii.me (2018), unverified"),
        "PRICE_PER_ACU_HOUR_V2_USD": Source("3P", "c3x.dev, factualminds (v2, us-east-1)"),
        "PROVISIONED_MIN_BILLED_S": Source("DOC", "UG User_DBInstanceBilling.md: 'billed in one second increments, "
                                           "with a minimum of 10 minutes'"),
        "V2_CAPACITY_STEP_ACU": Source("API", "ServerlessV2ScalingConfiguration: 'ACU values in half-step "
                                       "increments'"),
        "V2_LOWEST_RUNNING_ACU": Source("API", "ServerlessV2ScalingConfiguration MinCapacity: 0 with auto-pause, "
                                        "otherwise 'the smallest value that you can use is 0.5'"),
        "V2_MAX_CAPACITY_ACU": Source("API", "ServerlessV2ScalingConfiguration MaxCapacity: '256 for recent Aurora "
                                      "versions, or 128 for older versions'"),
        "V2_SECONDS_UNTIL_AUTO_PAUSE_RANGE_S": Source("API", "ServerlessV2ScalingConfiguration SecondsUntilAutoPause: "
                                                      "'between 300 seconds (five minutes) and 86,400 seconds'"),
        "V2_DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S": Source("API", "ServerlessV2ScalingConfiguration: 'The default is "
                                                        "300 seconds'"),
        "V2_RESUME_UP_TO_S": Source("DOC", "AWS Database Blog, Introducing scaling to 0 capacity with Amazon Aurora "
                                    "Serverless v2 (Nov 2024): 'It can take up to 15 seconds for the database to "
                                    "resume'"),
        "V2_MAX_CONNECTIONS": Source("DOC", "UG aurora-serverless-v2.setting-capacity.md: max_connections by maximum "
                                     "ACU (fact sheet section 5); between rows the row below is INF"),
        "PROVISIONED_CLASS_FOR_ACU": Source("DOC", "UG aurora-serverless.modifying.md: recommended instance class "
                                            "by Serverless maximum capacity"),
        "MANUAL_SECONDS_BEFORE_TIMEOUT_RANGE_S": Source("API", "ModifyCurrentDBClusterCapacity SecondsBeforeTimeout: "
                                                        "'between 10 and 600 seconds'"),
        "MANUAL_DEFAULT_SECONDS_BEFORE_TIMEOUT_S": Source("API", "ModifyCurrentDBClusterCapacity: 'The default is "
                                                          "300'"),
        "MANUAL_DEFAULT_TIMEOUT_ACTION": Source("API", "ModifyCurrentDBClusterCapacity TimeoutAction: "
                                                "'ForceApplyCapacityChange, the default'"),
        "CLOUDWATCH_NAMESPACE": Source("DOC", "UG Aurora.AuroraMySQL.Monitoring.Metrics.md: 'The AWS/RDS "
                                       "namespace includes the following metrics'"),
        "CLOUDWATCH_DIMENSION": Source("DOC", "UG metrics_dimensions.md: Aurora cluster metrics by "
                                       "DBClusterIdentifier"),
        "CLOUDWATCH_METRICS": Source("DOC", "UG aurora-serverless.viewing.md: 'the ServerlessDatabaseCapacity "
                                     "metric … CPUUtilization, DatabaseConnections, Queries'; units from UG "
                                     "Aurora.AuroraMySQL.Monitoring.Metrics.md"),
        "MYSQL_ONLY_METRICS": Source("DOC", "UG Aurora.AuroraMySQL.Monitoring.Metrics.md: Queries applies to "
                                     "Aurora MySQL"),
        "METRICS_PUBLISHED_WHILE_PAUSED": Source("INF", "API DBCluster.Capacity: 'The capacity is 0 (zero) when "
                                                 "the cluster is paused'; that the engine metrics stop while "
                                                 "no engine runs is the model's inference"),
        "METRIC_PUBLISH_PERIOD_S": Source("DOC", "UG monitoring-cloudwatch.md: 'Amazon Aurora automatically sends "
                                          "metric data to CloudWatch in 1-minute periods'"),
        "METRIC_STATISTICS": Source("API", "CloudWatch GetMetricStatistics Statistics"),
        "ALARM_STATES": Source("DOC", "CloudWatch User Guide AlarmThatSendsEmail.md: alarm states"),
        "ALARM_COMPARISONS": Source("API", "CloudWatch PutMetricAlarm ComparisonOperator"),
        "TREAT_MISSING_DATA": Source("DOC", "CloudWatch User Guide AlarmThatSendsEmail.md: treating missing "
                                     "data"),
        "DEFAULT_TREAT_MISSING_DATA": Source("DOC", "CloudWatch User Guide: 'The default behavior is missing'"),
        "ALARM_MAX_EVALUATION_S": Source("DOC", "CloudWatch User Guide: evaluation periods × period 'cannot "
                                         "exceed one day'"),
        "ALARM_EXTRA_DATAPOINTS": Source("INF", "CloudWatch User Guide example: 3 evaluation periods, 'CloudWatch "
                                         "retrieves the 5 most recent data points'"),
        "LOG_GROUP_TEMPLATE": Source("DOC", "UG AuroraMySQL.Integrating.CloudWatch.md: "
                                     "/aws/rds/cluster/cluster-name/log_type"),
        "LOG_TYPES": Source("DOC", "UG AuroraMySQL.Integrating.CloudWatch.md (error, general, slowquery, audit); "
                            "UG aurora-serverless-v1.how-it-works.md: v1 PostgreSQL logs go with the error log"),
        "LOG_PARAMETERS": Source("DOC", "UG aurora-serverless-v1.how-it-works.md, Logging for Aurora Serverless "
                                 "v1 (deadlock_timeout and log_autovacuum_min_duration: PostgreSQL manual, "
                                 "runtime-config-logging and -locks)"),
        "ALWAYS_ON_LOG_PARAMETERS": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: log_connections and "
                                           "log_disconnections 'Turned on by default and can't be changed'"),
        "LONG_QUERY_TIME_RANGE_S": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: 'a float between 0 "
                                          "and 31,536,000'"),
        "DEFAULT_LONG_QUERY_TIME_S": Source("DOC", "MySQL 5.7 manual, long_query_time default 10 (the v1 UG "
                                            "table says 'Default is 0 (not active)')"),
        "SERVER_AUDIT_EVENTS": Source("DOC", "UG aurora-serverless-v1.how-it-works.md and AuroraMySQL.Auditing.md"),
        "LOG_STATEMENT_VALUES": Source("DOC", "UG aurora-serverless-v1.how-it-works.md: 'none, ddl, mod, and "
                                       "all. Default is none'"),
        "DEFAULT_DEADLOCK_TIMEOUT_MS": Source("DOC", "PostgreSQL manual, runtime-config-locks: deadlock_timeout "
                                              "'The default is one second'"),
        "TLS_VERSIONS": Source("DOC", "UG aurora-serverless.md, Using TLS/SSL with Aurora Serverless v1: 'It supports "
                               "TLS/SSL versions 1.0, 1.1, and 1.2'"),
        "TLS_MODES": Source("DOC", "UG aurora-serverless.md: table of TLS/SSL modes, mysql and psql"),
        "DEFAULT_TLS_MODE": Source("DOC", "UG aurora-serverless.md: psql 'prefer (default)'"),
        "TLS_TERMINATION_QUOTE": Source("DOC", "UG aurora-serverless.md: TLS ends at the router fleet; pg_stat_ssl "
                                        "does not show the client's TLS state"),
        "TLS_ENFORCING_PARAMETERS": Source("DOC", "UG aurora-serverless.md: 'force_ssl for PostgreSQL and "
                                           "require_secure_transport for MySQL … are available now'"),
        "STORAGE_ENCRYPTION_QUOTE": Source("DOC", "UG aurora-serverless-v1.how-it-works.md, Aurora Serverless v1 and "
                                           "snapshots"),
        "SNAPSHOT_SHARING_QUOTE": Source("DOC", "UG aurora-serverless-v1.how-it-works.md, Aurora Serverless v1 and "
                                         "snapshots"),
        "NO_PUBLIC_IP_QUOTE": Source("DOC", "UG aurora-serverless.md, Configuration requirements (VPC only)"),
        "V1_UNSUPPORTED_AUTHENTICATION": Source("DOC", "UG aurora-serverless.md, Limitations: v1 doesn't support IAM "
                                                "database authentication or Kerberos authentication"),
        "MAINTENANCE_SEARCH_DAYS": Source("DOC", "UG aurora-serverless-v1.how-it-works.md, maintenance: it looks for "
                                          "a scaling point 'for up to seven days', with an event each day"),
        "MAINTENANCE_FORCE_QUOTE": Source("DOC", "UG aurora-serverless.how-it-works.md @1125a1b, maintenance: after "
                                          "seven days, ForceApplyCapacityChange regardless of the settings"),
    }
)


def max_connections(engine: str, capacity_acu: int) -> int:
    """The ``max_connections`` of a cluster at ``capacity_acu``; while paused (0) the lowest rung's value.

    That a paused MySQL cluster shows the 1-ACU value is documented; PostgreSQL's 2-ACU value is the model's choice
    (``max_connections_label`` tells which is which).

    Example:
        >>> max_connections("aurora-mysql", 0)
        90
    """
    table = MAX_CONNECTIONS[engine]
    if capacity_acu == 0:
        return table[CAPACITY_LADDER[engine][0]]
    return table[capacity_acu]


def max_connections_label(engine: str, capacity_acu: int) -> str:
    """Where ``max_connections(engine, capacity_acu)`` comes from: ``"DOC"`` (the v1 User Guide states it) or
    ``"INF"`` (inferred from a formula and the v2 tables).

    Example:
        >>> [max_connections_label("aurora-mysql", acu) for acu in (1, 8, 16, 128, 256)]
        ['DOC', 'DOC', 'INF', 'INF', 'DOC']
        >>> max_connections_label("aurora-postgresql", 2)
        'INF'
    """
    max_connections(engine, capacity_acu)  # a KeyError for an engine or rung that does not exist
    return "DOC" if capacity_acu in _DOCUMENTED_MAX_CONNECTIONS_ACU[engine] else "INF"


def connection_limit(engine: str, capacity_acu: int) -> int:
    """How many connections an application (not a superuser) can hold: ``max_connections``, less the
    superuser-reserved slots on PostgreSQL, whose next connection is refused with ``TOO_MANY_CONNECTIONS_ERROR``.

    Example:
        >>> connection_limit("aurora-mysql", 1), connection_limit("aurora-postgresql", 2)
        (90, 447)
    """
    reserved = SUPERUSER_RESERVED_CONNECTIONS if engine == "aurora-postgresql" else 0
    return max_connections(engine, capacity_acu) - reserved


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


# --- Reading the facts as tables ------------------------------------------------------------------------------

_ONE_LINE_CHARS = 120  # a lookup longer than this is printed whole on demand, not squeezed into a table cell


def table() -> pd.DataFrame:
    """Every fact on one row: its value on one line, its source label (DOC, API, 3P, INF) and its source.

    A lookup too long for one line (by engine, by capacity, …) names the constant to print instead.

    Example:
        >>> facts = table()
        >>> facts.loc["CAPACITY_LADDER", "label"], facts.loc["SECONDS_BEFORE_TIMEOUT_RANGE_S", "value"]
        ('API', '60–600')
        >>> any("\\n" in value for value in facts["value"])
        False
    """
    from ._tables import WholeTable

    rows = {name: (_one_line_or_pointer(name, globals()[name]), source.label, source.origin)
            for name, source in SOURCES.items()}
    return WholeTable.from_dict(rows, orient="index", columns=["value", "label", "source"]).rename_axis("fact")


def _one_line_or_pointer(name: str, value: object) -> str:
    if name.endswith("_RANGE_S") and len(value) == 2:
        return "–".join(_one_line(end) for end in value)
    text = _one_line(value)
    if len(text) <= _ONE_LINE_CHARS:
        return text
    return f"a lookup of {len(value)} entries: print facts.{name}" if hasattr(value, "keys") else text


def _one_line(value: object) -> str:
    """``value`` as one line of text: a sequence as 1, 2, 4; a lookup as key: value; …; ``{fields}`` as <fields>."""
    from ._tables import as_template

    if isinstance(value, str):
        return as_template(" ".join(value.split()))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if hasattr(value, "keys"):
        return "; ".join(f"{_one_line(key)}: {_one_line(item)}" for key, item in value.items())
    if isinstance(value, tuple | list):
        return ", ".join(_one_line(item) for item in value)
    return str(value)


def capacity_table() -> pd.DataFrame:
    """Each rung of either engine's ladder: its memory, and ``max_connections`` per engine with its label —
    DOC where the User Guide states the value, INF where it is inferred.

    Example:
        >>> rungs = capacity_table()
        >>> rungs.loc[2, ["MySQL max_connections", "MySQL source", "PostgreSQL source"]].tolist()
        [180, 'DOC', 'INF']
        >>> rungs.loc[1, "PostgreSQL max_connections"], rungs.loc[16, "MySQL source"]
        ('—', 'INF')
    """
    from ._tables import WholeTable

    rungs = sorted(set().union(*CAPACITY_LADDER.values()))
    columns = {"memory (GB)": [rung * GB_PER_ACU for rung in rungs]}
    for engine, short in (("aurora-mysql", "MySQL"), ("aurora-postgresql", "PostgreSQL")):
        on_ladder = [rung in CAPACITY_LADDER[engine] for rung in rungs]
        columns[f"{short} max_connections"] = [max_connections(engine, rung) if ok else "—"
                                               for rung, ok in zip(rungs, on_ladder, strict=True)]
        columns[f"{short} source"] = [max_connections_label(engine, rung) if ok else ""
                                      for rung, ok in zip(rungs, on_ladder, strict=True)]
    return WholeTable(columns, index=rungs).rename_axis("capacity (ACU)")
