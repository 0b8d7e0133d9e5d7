"""Third-party clients against the local Data API, unchanged: aurora-data-api (DB-API 2.0) and SQLAlchemy.

Neither was written for this endpoint; each talks to it through a boto3 ``rds-data`` client pointed at it, as it
would talk to AWS. The endpoint answers from a real PostgreSQL, so the drivers' own SQL (``DECLARE … SCROLL
CURSOR`` for a result over 1 MiB, SQLAlchemy's catalog queries) runs as it would on Aurora PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import aurora_data_api
import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from aurora_sim.data_api import serve


@pytest.fixture(scope="module")
def endpoint():
    with serve(flavour="v1", auto_pause_s=None) as running:
        yield running


@pytest.fixture
def rds_data(endpoint):
    return boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())


@pytest.fixture
def connection(endpoint, rds_data):
    conn = aurora_data_api.connect(aurora_cluster_arn=endpoint.resource_arn, secret_arn=endpoint.secret_arn,
                                   rds_data_client=rds_data, database=endpoint.database)
    yield conn
    conn.rollback()


@pytest.fixture
def engine(endpoint, rds_data):
    return sa.create_engine(f"postgresql+auroradataapi://:@/{endpoint.database}",
                            connect_args={"aurora_cluster_arn": endpoint.resource_arn,
                                          "secret_arn": endpoint.secret_arn, "rds_data_client": rds_data})


def _sent_sql(rds_data) -> list[str]:
    """Record every statement the client sends (botocore's parameter hook), to see which SQL a driver chose."""
    sent: list[str] = []
    rds_data.meta.events.register("provide-client-params.rds-data.ExecuteStatement",
                                  lambda params, **_: sent.append(params["sql"]))
    return sent


# --- aurora-data-api: the DB-API 2.0 driver ----------------------------------------------------------------------

def test_dbapi_execute_fetch_and_description(connection):
    cursor = connection.cursor()
    cursor.execute("SELECT id, name, balance, signup_date FROM Customer ORDER BY id")
    assert [column.name for column in cursor.description] == ["id", "name", "balance", "signup_date"]
    assert [column.type_code for column in cursor.description] == [int, str, Decimal, dt.date]
    assert cursor.fetchone() == (1, "Ana Souza", Decimal("120.50"), dt.date(2021, 1, 4))
    assert len(cursor.fetchmany(3)) == 3
    assert len(cursor.fetchall()) == 16
    assert cursor.fetchone() is None


PARAMETERS = {"i": 7, "f": 2.5, "s": "it's", "b": True, "n": None, "by": b"\x00\xff",
              "d": dt.date(2021, 3, 4), "t": dt.time(12, 30, 1), "ts": dt.datetime(2021, 3, 4, 5, 6, 7, 250000),
              "dec": Decimal("10.25")}


def test_dbapi_parameters_of_every_type_round_trip(connection):
    cursor = connection.cursor()
    cursor.execute("SELECT " + ", ".join(f":{name} AS {name}" for name in PARAMETERS), PARAMETERS)
    assert cursor.fetchone() == tuple(PARAMETERS.values())


def test_dbapi_executemany_commit_and_rollback(endpoint, rds_data, connection):
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE Visit (id INTEGER PRIMARY KEY, at DATE)")
    cursor.executemany("INSERT INTO Visit VALUES (:id, :at)",
                       [{"id": i, "at": dt.date(2024, 1, i)} for i in range(1, 4)])
    connection.commit()
    cursor = connection.cursor()
    cursor.execute("DELETE FROM Visit")
    assert cursor.rowcount == 3
    connection.rollback()
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM Visit")
    assert cursor.fetchone() == (3,), "the rolled-back DELETE must leave the committed rows"


def test_dbapi_result_over_1_mib_goes_through_the_driver_s_scroll_cursor(connection, rds_data):
    sent = _sent_sql(rds_data)
    cursor = connection.cursor()
    cursor.execute("SELECT g, repeat('x', 1000) AS filler FROM generate_series(1, 3000) AS g")
    rows = cursor.fetchall()
    assert [row[0] for row in rows] == list(range(1, 3001))
    assert any(sql.startswith("DECLARE ") and " SCROLL CURSOR FOR " in sql for sql in sent), sent[:3]
    assert any(sql.startswith("FETCH ") for sql in sent)


@pytest.mark.parametrize(("sql", "error_class"), [
    ("SELEC 1", "ER_SYNTAX_ERR"),
    ("SELECT * FROM no_such_table", "ER_UNDEF_TABLE"),
    ("SELECT no_such_column FROM Customer", "ER_UNDEF_COL"),
])
def test_dbapi_bad_sql_raises_the_driver_s_mapped_error_class(connection, sql, error_class):
    cursor = connection.cursor()
    with pytest.raises(aurora_data_api.DatabaseError) as caught:
        cursor.execute(sql)
    assert type(caught.value).__name__ == error_class, f"{type(caught.value).__name__}: {caught.value}"


# --- SQLAlchemy with sqlalchemy-aurora-data-api -----------------------------------------------------------------

def test_sqlalchemy_connects_and_runs_core_and_text(engine):
    customer = sa.table("customer", sa.column("id"), sa.column("name"), sa.column("balance"))
    with engine.connect() as conn:
        assert conn.dialect.server_version_info[0] == 16
        rich = conn.execute(sa.select(customer.c.name).where(customer.c.balance > 200).order_by(customer.c.id))
        assert rich.scalars().all()
        count = conn.execute(sa.text("SELECT count(*) FROM Customer WHERE signup_date >= :since"),
                             {"since": dt.date(2021, 3, 1)}).scalar_one()
        assert 0 < count < 20


def test_sqlalchemy_inspects_tables_and_columns(engine):
    inspector = sa.inspect(engine)
    assert "customer" in inspector.get_table_names()
    columns = {column["name"]: column for column in inspector.get_columns("customer")}
    assert list(columns) == ["id", "name", "email", "balance", "signup_date"]
    assert isinstance(columns["balance"]["type"], sa.Numeric) and columns["balance"]["type"].scale == 2
    assert columns["email"]["nullable"] and not columns["name"]["nullable"]


def test_sqlalchemy_primary_key_reflection_meets_the_data_api_s_bigint(engine):
    """SQLAlchemy 2's key query passes generate_subscripts(indkey, :n); the Data API binds a longValue as bigint
    (pgJDBC's setLong), for which PostgreSQL has no generate_subscripts: reflection of keys fails, as against AWS
    (cloud-utils/sqlalchemy-aurora-data-api#43)."""
    with pytest.raises(sa.exc.DatabaseError, match=r"function generate_subscripts\(int2vector, bigint\) does not"):
        sa.inspect(engine).get_pk_constraint("customer")


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)  # SERIAL
    body: Mapped[str] = mapped_column(sa.String(200))
    tags: Mapped[dict] = mapped_column(JSONB, default=dict)
    written: Mapped[dt.datetime | None]


def test_sqlalchemy_orm_create_all_add_query_update_rollback(engine):
    _Base.metadata.create_all(engine)
    with engine.connect() as conn:
        serial = conn.execute(sa.text("SELECT pg_get_serial_sequence('note', 'id')")).scalar_one()
        assert serial == "public.note_id_seq"
    with Session(engine) as session:
        session.add_all([Note(body="first", tags={"k": [1, 2]}, written=dt.datetime(2024, 5, 6, 7, 8, 9)),
                         Note(body="second")])
        session.commit()
        first = session.scalars(sa.select(Note).where(Note.body == "first")).one()
        assert (first.id, first.tags, first.written) == (1, {"k": [1, 2]}, dt.datetime(2024, 5, 6, 7, 8, 9))
        first.body = "changed"
        session.commit()
        session.add(Note(body="never"))
        session.flush()
        session.rollback()
        assert session.scalars(sa.select(Note.body).order_by(Note.id)).all() == ["changed", "second"]
