"""meltano.yml, the Meltano Hub definition and `tap-huey --about` describe the same settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SDK_BUILTINS = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
}
KIND_TYPES = {
    "string": "string",
    "options": "string",
    "integer": "integer",
    "decimal": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
    "date_iso8601": "string",
}


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    command = [str(Path(sys.executable).parent / "tap-huey"), "--about", "--format", "json"]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _meltano_tap() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-huey")


def _hub() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "hub" / "tap-huey.yml").read_text())


@pytest.mark.parametrize("definition", [_meltano_tap, _hub], ids=["meltano.yml", "hub"])
def test_definition_settings_match_about(definition: Any, about: dict[str, Any]) -> None:
    plugin = definition()
    properties = {k: v for k, v in about["settings"]["properties"].items() if k not in SDK_BUILTINS}

    settings = {s["name"]: s for s in plugin["settings"]}

    assert list(settings) == list(properties)
    for name, setting in settings.items():
        schema = properties[name]
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert KIND_TYPES[setting["kind"]] in types, name
        assert setting.get("sensitive", False) == schema.get("secret", False), name
        assert setting["description"] == schema["description"], name
        assert setting.get("value") == schema.get("default"), name
        if setting["kind"] == "options":
            assert [o["value"] for o in setting["options"]] == schema["enum"], name
        if setting["kind"] == "date_iso8601":
            assert schema["format"] == "date-time", name


@pytest.mark.parametrize("definition", [_meltano_tap, _hub], ids=["meltano.yml", "hub"])
def test_definition_capabilities_are_ones_the_tap_has(
    definition: Any, about: dict[str, Any]
) -> None:
    plugin = definition()

    assert set(plugin["capabilities"]) <= set(about["capabilities"])
    assert plugin["settings_group_validation"] == [about["settings"]["required"]]
    assert plugin["namespace"] == "tap_huey"
    assert plugin["executable"] == "tap-huey"


def test_hub_definition_has_what_the_hub_expects() -> None:
    hub = _hub()

    for key in (
        "name",
        "namespace",
        "variant",
        "label",
        "description",
        "pip_url",
        "executable",
        "repo",
        "docs",
        "keywords",
        "capabilities",
        "settings",
    ):
        assert hub.get(key), key
    assert hub["capabilities"] == _meltano_tap()["capabilities"]
