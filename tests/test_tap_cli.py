"""The `tap-huey` command: about, discovery, environment settings, and plain errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from huey_sandbox.server import SandboxServer
from scripts.sync_readme import END, START, settings_table
from tests.conftest import tap_config, tap_env
from tests.singer import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_table_matches_about_markdown() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    block = readme.split(START, 1)[1].split(END, 1)[0].strip()

    assert block == settings_table(), "README is stale: run .venv/bin/python scripts/sync_readme.py"


def test_about_lists_every_setting_with_the_secret_marked(tmp_path: Path) -> None:
    output = run_cli(["--about", "--format", "json"], None, tmp_path)

    about = json.loads("\n".join(output.lines))
    properties = about["settings"]["properties"]
    for name in (
        "client_id",
        "client_secret",
        "api_url",
        "token_url",
        "auth_style",
        "api_version",
        "views",
        "view_overrides",
        "start_date",
        "timezone",
        "page_size",
        "response_format",
    ):
        assert name in properties, name
    assert properties["client_secret"]["secret"] is True
    assert about["settings"]["required"] == ["client_id", "client_secret"]


def test_discover_command_writes_a_catalog_with_every_view(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    output = run_cli(["--discover"], tap_config(sandbox), tmp_path)

    catalog = json.loads("\n".join(output.lines))
    assert output.exit_code == 0
    assert sorted(s["tap_stream_id"] for s in catalog["streams"]) == sorted(sandbox.views())


def test_settings_are_read_from_environment_variables(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = tap_env(sandbox, views='["Type_Showcase"]')

    output = run_cli(["--config", "ENV"], None, tmp_path, env=env)

    assert output.exit_code == 0, output.stderr[-2000:]
    assert len(output.records("Type_Showcase")) == 10
    assert output.streams() == ["Type_Showcase"]


def test_catalog_with_one_view_selected_syncs_only_that_view_and_describes_only_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    catalog = json.loads("\n".join(run_cli(["--discover"], tap_config(sandbox), tmp_path).lines))
    for entry in catalog["streams"]:
        root = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        root["metadata"]["selected"] = entry["tap_stream_id"] == "Practices"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    sandbox.clear_log()

    output = run_cli(["--catalog", str(tmp_path / "catalog.json")], tap_config(sandbox), tmp_path)

    assert output.exit_code == 0, output.stderr[-2000:]
    assert output.streams() == ["Practices"]
    described = [e["path"] for e in sandbox.log if e["path"].endswith("/fields")]
    assert described == ["/integrations/rest/v3/views/Practices/fields"]


def test_stream_maps_and_flattening_apply(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = tap_config(
        sandbox,
        views=["Practices"],
        stream_maps={"Practices": {"Phone": "__NULL__", "county_upper": "County.upper()"}},
    )

    output = run_cli([], config, tmp_path)

    record = output.records("Practices")[0]
    assert "Phone" not in record
    assert record["county_upper"] == record["County"].upper()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line or "Traceback" in line]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"page_size": 1001}, "page_size"),
        ({"page_size": 2}, "page_size"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA time zone"),
        ({"api_url": "http://huey.example.com"}, "api_url must use HTTPS"),
        ({"api_url": "not a url"}, "api_url must be a URL"),
        ({"auth_style": "header"}, "auth_style"),
        ({"response_format": "csv"}, "response_format"),
        ({"start_date": "yesterday"}, "start_date"),
    ],
)
def test_a_wrong_setting_fails_before_any_request_with_a_plain_message(
    sandbox: SandboxServer, tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    sandbox.clear_log()

    output = run_cli([], tap_config(sandbox, **overrides), tmp_path)

    assert output.exit_code == 1
    assert expected in output.stderr
    assert "Traceback" not in output.stderr
    assert sandbox.log == []


def test_missing_credentials_are_named(tmp_path: Path) -> None:
    output = run_cli([], {"api_url": "http://127.0.0.1:9"}, tmp_path)

    assert output.exit_code == 1
    assert "client_id" in output.stderr and "client_secret" in output.stderr
    assert "Traceback" not in output.stderr


def test_wrong_secret_fails_with_the_oauth_error_and_what_to_check(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = tap_config(sandbox, client_secret="not-the-secret")

    output = run_cli([], config, tmp_path)

    errors = _error_lines(output.stderr)
    assert output.exit_code == 1
    assert len(errors) == 1
    assert "invalid_client" in errors[0]
    assert f"{sandbox.url}/oauth/token" in errors[0]
    assert "Check client_id and client_secret" in errors[0]
    assert "not-the-secret" not in output.stderr


def test_unknown_view_fails_naming_the_views_that_exist(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    output = run_cli([], tap_config(sandbox, views=["Prov1ders"]), tmp_path)

    errors = _error_lines(output.stderr)
    assert output.exit_code == 1
    assert errors and "View(s) 'Prov1ders' not found" in errors[0]
    assert "Providers, Practices, Provider_Locations, Type_Showcase" in errors[0]
    assert "Traceback" not in output.stderr


def test_where_rejected_by_caspio_fails_with_its_sql_message(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = tap_config(
        sandbox, views=["Practices"], view_overrides={"Practices": {"where": "Nope = 1"}}
    )

    output = run_cli([], config, tmp_path)

    errors = _error_lines(output.stderr)
    assert output.exit_code == 1
    assert any(
        "view 'Practices', page 1" in e
        and "SqlServerError" in e
        and "Invalid column name 'Nope'" in e
        for e in errors
    )
    assert "Traceback" not in output.stderr


def test_view_the_profile_may_not_read_fails_with_403_and_advice(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    fresh_sandbox.faults.forbidden_views = {"Practices"}

    output = run_cli([], tap_config(fresh_sandbox, views=["Practices"]), tmp_path)

    errors = _error_lines(output.stderr)
    assert output.exit_code == 1
    assert any("HTTP 403" in e and "no permission" in e for e in errors)
    assert "Traceback" not in output.stderr
