"""The deterministic text of a schema file."""

from __future__ import annotations

import json


def render(schema: dict) -> str:
    """The deterministic text of the schema file."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"
