"""What the target database has of what erpsync needs, and what it lacks: Sage tables and their columns, the
staging columns erpsync writes (``StgSalesOrder`` / ``StgSOLine``), the Amazon extension tables, and — on a real
Sage site — the stored procedures it calls. ``erpsync check`` prints the report; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, inspect

from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.database import SageDatabase

STAGING = (s.StgSalesOrder, s.StgSOLine)
EXTENSIONS = (s.tsoSalesOrderExt_AMZ, s.tsoSOLineExt_AMZ)


@dataclass(frozen=True)
class SchemaGroup:
    name: str  # "Sage tables", "staging columns", "extension tables", "procedures"
    present: list[str]
    missing: list[str]


@dataclass(frozen=True)
class SchemaReport:
    groups: list[SchemaGroup]
    problems: list[str]  # what is missing, one line each: 'missing table X', 'X: missing column Y', ...


class SchemaCheck(SageDatabase):

    def check_schema(self) -> list[str]:
        """What the target database lacks, by name: 'missing table X', 'X: missing column Y',
        'missing procedure P'."""
        return self.schema_report().problems

    def schema_report(self) -> SchemaReport:
        return self._read(self._report)

    def _report(self, conn: Connection) -> SchemaReport:
        inspector = inspect(conn)
        actual = {name.lower(): name for name in inspector.get_table_names()}
        columns_of: dict[str, set[str] | None] = {}
        problems: list[str] = []
        wanted = [t for t in s.expected_tables(self.tables, replica=self.backend.replica_tables)]
        for table in wanted:
            name = actual.get(table.name.lower())
            if name is None:
                columns_of[table.name] = None
                problems.append(f"missing table {table.name}")
                continue
            have = columns_of[table.name] = {c["name"].lower() for c in inspector.get_columns(name)}
            problems += [f"{table.name}: missing column {c.name}" for c in table.columns if c.name.lower() not in have]
        staged = [(f"{t.name}.{c.name}", c.name.lower() in (columns_of.get(t.name) or ())) for t in STAGING
                  for c in t.columns]
        extensions = [(t.name, columns_of.get(t.name) is not None) for t in EXTENSIONS]
        tables = [(t.name, columns_of.get(t.name) is not None) for t in wanted
                  if t not in STAGING and t not in EXTENSIONS]
        groups = [_group("Sage tables", tables), _group("staging columns", staged),
                  _group("extension tables", extensions)]
        if self.backend.procedures:
            found = self._procedures(conn, self.backend.procedures)
            procedures = [(name, name.lower() in found) for name in self.backend.procedures]
            groups.append(_group("procedures", procedures))
            problems += [f"missing procedure {name}" for name, ok in procedures if not ok]
        return SchemaReport(groups, problems)

    def server_utc_offset(self) -> timedelta | None:
        """How far the database server's clock is from UTC now, to the quarter hour (what Sage's local times are
        written in; the replica on SQLite keeps UTC: None)."""
        def read(conn: Connection) -> timedelta | None:
            if conn.dialect.name == "sqlite":
                return None
            return utc_offset(conn.execute(sql.server_clock()).scalar_one(), datetime.now(timezone.utc))

        return self._read(read)

    @staticmethod
    def _procedures(conn: Connection, names: tuple[str, ...]) -> set[str]:
        if conn.dialect.name == "sqlite":  # SQLite has no stored procedures
            return set()
        return {row.name.lower() for row in conn.execute(sql.procedures_present(), {"names": list(names)})}


def utc_offset(server_now: datetime, utc_now: datetime) -> timedelta:
    """The offset of a server's clock reading: an aware reading's own; a naive (local) one's distance from
    ``utc_now``, to the quarter hour (a clock a few minutes off, or a slow reply, still gives its zone's offset)."""
    if server_now.tzinfo is not None:
        return server_now.utcoffset() or timedelta(0)
    seconds = (server_now - utc_now.astimezone(timezone.utc).replace(tzinfo=None)).total_seconds()
    return timedelta(minutes=15 * round(seconds / 900))


def _group(name: str, items: list[tuple[str, bool]]) -> SchemaGroup:
    return SchemaGroup(name, [n for n, ok in items if ok], [n for n, ok in items if not ok])
