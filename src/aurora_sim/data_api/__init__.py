"""A local Amazon RDS Data API (rds-data 2018-08-01) backed by the workbook's real PostgreSQL, for notebook 08."""

from .auth import KeyPair
from .errors import ApiError
from .gate import ClusterGate
from .server import DATABASE, RESOURCE_ARN, SECRET_ARN, Endpoint, serve

__all__ = ["DATABASE", "RESOURCE_ARN", "SECRET_ARN", "ApiError", "ClusterGate", "Endpoint", "KeyPair", "serve"]
