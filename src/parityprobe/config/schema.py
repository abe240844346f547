"""The JSON Schema of scenario files, generated from the models; a checked-in copy serves editors."""

from __future__ import annotations

import json

from parityprobe.config.scenario import Scenario

SCHEMA_FILE_NAME = "scenario.schema.json"


def scenario_schema_json() -> str:
    """The schema as stable, indented JSON text ending in a newline."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "parityprobe scenario"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
