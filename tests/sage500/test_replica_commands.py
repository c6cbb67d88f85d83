"""`erpsync sage500 replica create|seed [--reset]` build only a replica: procedure mode or a SQL Server URL is
refused with a clear message and a non-zero exit before any connection is attempted."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.commands import sage500 as commands
from erpsync.errors import ConfigError
from erpsync.sage500 import replica
from erpsync.sage500.engine import make_engine

runner = CliRunner()
MSSQL = "mssql+pymssql://erpsync@sqlhost/MAS500_app"


@pytest.fixture
def no_connection(monkeypatch):
    """Fails the test if the command makes an engine at all."""
    made = []
    monkeypatch.setattr(commands, "make_engine", lambda *a, **k: made.append(a) or pytest.fail("engine made"))
    return made


@pytest.mark.parametrize("toml, extra", [
    (f'[sage500]\nmode = "procedure"\nurl = "{MSSQL}"\n', []),
    ('[sage500]\nmode = "procedure"\nurl = "sqlite:///.erpsync/sage500.db"\n', []),  # mode alone decides
    ("", ["--url", MSSQL]),  # the default replica config, pointed at a SQL Server
    ('[sage500]\nurl = "mssql+pymssql://erpsync@sqlhost/other"\n', []),
])
@pytest.mark.parametrize("command", [["create"], ["seed"], ["seed", "--reset"]])
def test_refused_before_any_connection(workdir, no_connection, toml, extra, command):
    (workdir / "erpsync.toml").write_text(toml)
    result = runner.invoke(app, ["sage500", "replica", *command, *extra])
    assert result.exit_code == 1, result.output
    assert "refused: " in result.stderr and "nothing was touched" in result.stderr
    assert "only builds the test replica" in result.stderr
    assert no_connection == [] and not (workdir / ".erpsync" / "sage500.db").exists()


def test_a_replica_is_still_built(workdir):
    result = runner.invoke(app, ["sage500", "replica", "seed", "--items", "3"])
    assert result.exit_code == 0, result.output
    assert (workdir / ".erpsync" / "sage500.db").exists()


def test_the_library_refuses_a_sql_server_engine_too():
    engine = make_engine(MSSQL)  # no connection is made by creating an engine
    for build in (replica.create, replica.drop, replica.seed):
        with pytest.raises(ConfigError, match="is a SQL Server database \\(a real Sage 500\\)"):
            build(engine)
