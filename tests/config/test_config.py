"""Settings and secrets: defaults run on one machine; secrets only from the environment or a secrets file."""

import io
import json
import logging
import re
import tomllib

import pytest
import structlog

from erpsync import config, logs
from erpsync.errors import ConfigError


def test_defaults_run_everything_here(workdir):
    settings = config.load()
    assert settings.amazon.endpoint == "sandbox"
    assert settings.sage500.mode == "replica"
    assert settings.resolve_url(settings.state.url) == f"sqlite:///{workdir / '.erpsync' / 'state.db'}"
    assert (workdir / ".erpsync").is_dir()


def test_init_writes_a_template_that_loads_to_the_defaults(workdir):
    path = config.write_template()
    text = path.read_text()
    assert text.startswith("# erpsync configuration")
    assert "ERPSYNC_LWA_REFRESH_TOKEN" in text  # it says where secrets go
    loaded = config.load(path)
    assert loaded.model_dump() == config.Settings(base_dir=workdir).model_dump()
    with pytest.raises(ConfigError, match="already exists"):
        config.write_template()


def test_init_template_names_the_job_lease_with_its_default(workdir):
    """The leases change added ``[queue] lease_seconds``; the template shows it, commented, at its default."""
    text = config.write_template().read_text()
    queue = tomllib.loads(text)["queue"]
    assert queue["lease_seconds"] == config.QueueSettings.model_fields["lease_seconds"].default
    assert re.search(r"^# .*lease.*\n(#.*\n)*lease_seconds = ", text, re.M | re.I)


def test_secrets_come_from_the_file_and_the_environment_wins(workdir, monkeypatch):
    (workdir / ".erpsync").mkdir()
    (workdir / ".erpsync" / "secrets.toml").write_text('lwa_refresh_token = "Atzr|from-file"\n'
                                                       'sage_password = "file-pw"\n')
    monkeypatch.setenv("ERPSYNC_SAGE_PASSWORD", "env-pw")
    secrets = config.load().secrets
    assert secrets.lwa_refresh_token.get_secret_value() == "Atzr|from-file"
    assert secrets.sage_password.get_secret_value() == "env-pw"
    shown = repr(secrets) + str(secrets) + repr(config.load())
    assert "from-file" not in shown and "env-pw" not in shown


def test_secrets_are_refused_in_the_config_file(workdir):
    (workdir / "erpsync.toml").write_text('[secrets]\nlwa_client_secret = "oops"\n')
    with pytest.raises(ConfigError, match="secrets do not belong in the config file") as exc:
        config.load()
    assert "oops" not in str(exc.value)


def test_unknown_secret_names_and_bad_toml_are_named(workdir, monkeypatch):
    (workdir / ".erpsync").mkdir()
    bad = workdir / ".erpsync" / "secrets.toml"
    bad.write_text('lwa_refresh_tokn = "x"\n')
    with pytest.raises(ConfigError, match="lwa_refresh_tokn"):
        config.load()
    bad.unlink()
    (workdir / "erpsync.toml").write_text("[sage500\nmode = 1\n")
    with pytest.raises(ConfigError, match="erpsync.toml is not valid TOML"):
        config.load()


def test_a_misspelt_key_is_named(workdir):
    (workdir / "erpsync.toml").write_text('[sage500]\nmoed = "replica"\n')
    with pytest.raises(ConfigError, match="moed"):
        config.load()


def test_logs_hold_neither_secrets_nor_buyer_data(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stderr", buffer)
    logs.configure(json=True)
    try:
        logs.get("t").info("order.written", amazon_order_id="113-1234567-1234567", name="Jane Buyer",
                           email="jane@example.com", refresh_token="Atzr|IwEBIsecret",
                           detail="header was Atza|IwEBIaccess-token-value end")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["amazon_order_id"] == "113-1234567-1234567"  # the correlation id stays
    text = buffer.getvalue()
    for leaked in ("Jane Buyer", "jane@example.com", "IwEBIsecret", "access-token-value"):
        assert leaked not in text


def test_commands_print_a_configuration_error_verbatim_and_exit_2(workdir):
    from typer.testing import CliRunner

    from erpsync.cli import app

    (workdir / "erpsync.toml").write_text('[mapping]\nsku_aliases = { "[AMZ]-1" = 3 }\n')
    result = CliRunner().invoke(app, ["dlq", "list"])
    assert result.exit_code == 2
    assert "configuration error" in result.stderr and "[AMZ]-1" in result.stderr  # not eaten as markup
