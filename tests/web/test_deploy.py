"""The deployment files in deploy/ name commands and options erpsync has, and their config is valid."""

from __future__ import annotations

import configparser
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from erpsync import config as config_mod
from erpsync.cli import app
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
runner = CliRunner()


def accepted(args: list[str]) -> None:
    """The CLI parses ``args`` (``--help`` stops it before it runs anything)."""
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_run_real_commands(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(unit)
    command = shlex.split(parser["Service"]["ExecStart"])
    assert command[0].endswith("/erpsync")
    accepted(command[1:])
    assert parser["Service"]["KillSignal"] == "SIGTERM" and parser["Service"]["Restart"] == "on-failure"


def test_the_units_cover_both_shapes():
    names = {unit.name for unit in UNITS}
    assert {"erpsync.service", "erpsync-web.service", "erpsync-worker-amazon@.service",
            "erpsync-agent.service"} <= names


def test_compose_services_run_real_commands_on_a_valid_config(tmp_path):
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker-amazon", "agent"} <= set(services)
    assert services["worker-amazon"]["deploy"]["replicas"] == 3
    assert services["agent"]["command"] == ["worker", "--queue", "sage500"]
    for name in ("web", "worker-amazon", "agent"):
        accepted(services[name]["command"])
    settings = config_mod.load(DEPLOY / "erpsync.compose.toml")
    assert settings.queue.url.startswith("redis://") and settings.state.url.startswith("postgresql")
    assert settings.sage500.mode == "procedure"


def test_every_dashboard_page_has_a_screenshot_shown_in_the_readme():
    """Each page template (the browser tests take the screenshots: ERPSYNC_SCREENSHOTS=docs/screenshots)."""
    templates = REPO / "src" / "erpsync" / "web" / "templates"
    shot = {"message": "replayed"}  # the result page, after a replay
    readme = (REPO / "README.md").read_text()
    for page in sorted(p.stem for p in templates.glob("*.html") if p.stem not in ("base", "_pager")):
        name = shot.get(page, page.replace("_", "-"))
        assert (REPO / "docs" / "screenshots" / f"{name}.png").is_file(), page
        assert f"](docs/screenshots/{name}.png)" in readme, page
