"""The committed JSON Schema of the spec language, shipped as package data and read once per process."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SCHEMA_NAME = "netspec.schema.json"
# Layer kinds are the schema's ``$defs`` named ``layer.<Type>``.
LAYER_PREFIX = "layer."


def schema_path() -> Path:
    """The schema file, package data beside this module (``schemas/`` at the repository root is a copy for editors)."""
    return Path(__file__).resolve().parent / SCHEMA_NAME


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The committed JSON Schema (parsed once per process)."""
    return json.loads(schema_path().read_text(encoding="utf-8"))
