"""`erpsync check` on the Sage side: what a real site has and lacks (staging columns, extension tables,
procedures), the clock warning, first-run seeding by the command — and a health check that never writes."""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from typer.testing import CliRunner

from erpsync import config
from erpsync.cli import app
from erpsync.runtime import health
from erpsync.sage500 import replica
from erpsync.sage500.engine import make_engine

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_the_runtime_health_check_imports_no_adapter_and_writes_nothing(workdir):
    tree = ast.parse(Path(health.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m and m.startswith(("erpsync.sage500", "erpsync.amazon"))}
    results = health.run_checks(config.load())
    assert [r.name for r in results] == ["state store", "queue", "amazon"] and all(r.ok for r in results)
    assert not (workdir / ".erpsync" / "sage500.db").exists()  # no replica made as a side effect


def test_check_seeds_the_embedded_replica_once_then_only_reads(workdir):
    first = invoke("check")
    assert first.exit_code == 0, first.output
    assert "created the replica and seeded company SOA" in first.stdout
    replica_file = workdir / ".erpsync" / "sage500.db"
    before = replica_file.stat().st_mtime_ns, replica_file.stat().st_size
    again = invoke("check")
    assert again.exit_code == 0 and "created the replica" not in again.stdout
    assert (replica_file.stat().st_mtime_ns, replica_file.stat().st_size) == before
    assert "Sage clock UTC" in again.stdout and "warning" not in again.stdout  # a replica: no clock warning


def _procedure_site(workdir, url: str, timezone: str | None = None) -> None:
    zone = f'timezone = "{timezone}"\n' if timezone else ""
    (workdir / "erpsync.toml").write_text(f'[sage500]\nmode = "procedure"\nurl = "{url}"\n{zone}')


def test_check_lists_what_a_real_site_has_and_lacks(workdir, postgres_url):
    """A PostgreSQL database standing in for a site's SQL Server: Sage's tables are there (the replica's, without
    the key counters a real Sage keeps elsewhere), one staging column and an extension table are not, and the
    procedures appear as the site installs them."""
    engine = make_engine(postgres_url)
    replica.seed(engine, items=5)
    with engine.begin() as conn:  # the server's clock, as a SQL Server in Chicago keeps it
        conn.execute(text(f'ALTER DATABASE "{engine.url.database}" SET timezone TO \'America/Chicago\''))
        conn.execute(text('ALTER TABLE "StgSOLine" DROP COLUMN "ExtAmt"'))
        conn.execute(text('DROP TABLE "tsoSOLineExt_AMZ"'))
    _procedure_site(workdir, postgres_url)
    result = invoke("check")
    assert result.exit_code == 1
    out = result.stdout
    assert "staging columns: " in out and "missing: StgSOLine.ExtAmt" in out
    assert "extension tables: 1 present (tsoSalesOrderExt_AMZ); missing: tsoSOLineExt_AMZ" in out
    assert ("procedures: 0 present; missing: spSOapiSalesOrdIns, spGetNextSurrogateKey, "
            "spGetNextBlockSurrogateKey") in out
    assert "- missing procedure spSOapiSalesOrdIns" in out and "- StgSOLine: missing column ExtAmt" in out
    assert "tciSurrogateKey_R" not in out  # replica-only: not expected of a real site
    assert "warning: [sage500] timezone is not set" in out
    chicago = datetime.now(ZoneInfo("America/Chicago")).strftime("%z")  # -0500 or -0600
    assert f"the database server's clock is at UTC{chicago[:3]}:{chicago[3:]} now" in out
    with engine.begin() as conn:
        conn.execute(text('ALTER TABLE "StgSOLine" ADD COLUMN "ExtAmt" NUMERIC(15, 3)'))
        for name in ("spSOapiSalesOrdIns", "spGetNextSurrogateKey", "spGetNextBlockSurrogateKey"):
            conn.execute(text(f'CREATE PROCEDURE "{name}"() LANGUAGE SQL AS $$ SELECT 1 $$'))
    replica.create(engine)  # puts back the extension table (and nothing it would overwrite)
    engine.dispose()
    _procedure_site(workdir, postgres_url, "UTC")  # as `erpsync init` writes it, on a server that is not on UTC
    wrong = invoke("check")
    assert wrong.exit_code == 0 and "warning: [sage500] timezone 'UTC' is at UTC+00:00 now; the database server's " \
        f"clock is at UTC{chicago[:3]}:{chicago[3:]} now" in wrong.stdout
    assert f"would be converted {abs(int(chicago[:3]))} hours off" in wrong.stdout
    _procedure_site(workdir, postgres_url, "America/Chicago")
    fixed = invoke("check")
    assert fixed.exit_code == 0, fixed.output
    assert "procedures: 3 present (spSOapiSalesOrdIns, spGetNextSurrogateKey, spGetNextBlockSurrogateKey); none " \
           "missing" in fixed.stdout
    assert "staging columns: " in fixed.stdout and "Sage clock America/Chicago" in fixed.stdout
    assert "warning" not in fixed.stdout


def test_init_writes_the_sage_clock(workdir):
    assert invoke("init").exit_code == 0
    written = (workdir / "erpsync.toml").read_text()
    assert 'timezone = "UTC"' in written
    settings = config.load(workdir / "erpsync.toml")
    assert settings.sage500.timezone == "UTC" and "timezone" in settings.sage500.model_fields_set


def test_the_server_clock_offset_from_a_naive_sql_server_reading_or_an_aware_one():
    from datetime import timedelta, timezone

    from erpsync.sage500.schema_check import utc_offset

    utc = datetime(2026, 3, 8, 8, 1, 7, tzinfo=timezone.utc)  # just after Chicago moved to CDT (UTC-5)
    assert utc_offset(datetime(2026, 3, 8, 3, 1, 7), utc) == timedelta(hours=-5)  # GETDATE(): naive local time
    assert utc_offset(datetime(2026, 3, 8, 3, 4, 50), utc) == timedelta(hours=-5)  # a clock minutes off
    assert utc_offset(datetime(2026, 3, 8, 13, 31), utc) == timedelta(hours=5, minutes=30)  # Asia/Kolkata
    assert utc_offset(datetime(2026, 3, 8, 2, 1, tzinfo=ZoneInfo("America/Chicago")), utc) == timedelta(hours=-6)
