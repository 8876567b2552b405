"""Generates the JSON Schema of the spec language (schemas/netspec.schema.json) from the installed Keras."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..schema.derive import classes as K
from ..schema.derive.args import UNTYPED_ARGS
from ..schema.derive.nodes import ArgCollector, basic_defs, layer_defs, layer_object_def, node_defs, object_kind_defs
from .schemagen_deploy import deploy_defs
from .schemagen_train import export_target_def, train_def, train_object_defs
from ..schema.derive.render import render
from ..schema.derive.types import NAME, NULL, STR, described, ref

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:netspec:schema:1"
# The packaged copy (what netspec reads) and the copy at the repository root (what editors point at).
PACKAGED = Path(__file__).resolve().parents[1] / "schema" / "netspec.schema.json"
EDITOR_COPY = Path(__file__).resolve().parents[2] / "schemas" / "netspec.schema.json"


def generate() -> dict:
    """The JSON Schema (draft 2020-12) of the spec language for the installed Keras.

    Returns:
        The schema as plain data; ``render`` turns it into the committed file's text.
    """
    import keras

    collector = ArgCollector()
    tensor_dtypes, policies = K.dtype_names()
    defs = basic_defs(tensor_dtypes, policies)
    layers, layer_names = layer_defs(collector)
    defs.update(layers)
    defs["layerObject"] = layer_object_def()
    defs["activation"] = {
        "anyOf": [{"enum": K.activation_names()}, NULL[0]],
        "description": "A `keras.activations` name; null for none.",
    }
    defs.update(object_kind_defs(collector, "initializer", "initializers",
                                 "An initializer name, or {type: <class>, ...its args}."))
    defs.update(object_kind_defs(collector, "regularizer", "regularizers",
                                 "A regularizer name, or {type: L1 | L2 | L1L2 | OrthogonalRegularizer, ...}."))
    defs.update(object_kind_defs(collector, "constraint", "constraints",
                                 "A constraint name, or {type: <class>, ...its args}."))
    defs.update(node_defs(layer_names))
    defs["train"] = train_def()
    defs.update(train_object_defs(collector))
    defs["exportTarget"] = export_target_def()
    defs.update(deploy_defs(defs))
    _check_untyped(collector.untyped)
    return {
        "$schema": SCHEMA_URI,
        "$id": SCHEMA_ID,
        "title": "netspec spec, version 1",
        "description": "A declarative network: YAML that netspec compiles to a functional Keras model.",
        "x-netspec-keras": keras.__version__,
        "type": "object",
        "properties": {
            "netspec": {"const": 1, "description": "The language version."},
            "name": described(NAME, "The model name."),
            "description": STR[0],
            "params": {"type": "object", "propertyNames": NAME,
                       "description": "Named values used by `$name` and `${expr}`, evaluated in order."},
            "plugins": {"type": "array", "items": {"type": "string", "minLength": 1},
                        "description": "Modules or spec-relative .py files registering user layers "
                        "(loaded only when trusted)."},
            "inputs": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("modelInput"),
                       "minProperties": 1},
            "blocks": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("block")},
            "nodes": {"type": "array", "items": ref("node"), "minItems": 1},
            "outputs": described(ref("modelOutputs"), "Default: the last node."),
            "train": ref("train"),
            "export": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("exportTarget")},
        },
        "required": ["netspec", "name", "inputs", "nodes"],
        "additionalProperties": False,
        "$defs": defs,
    }


def _check_untyped(found: set[str]) -> None:
    if found != UNTYPED_ARGS:
        raise RuntimeError(
            "the set of untyped arguments changed; type them in schemagen_args.OVERRIDES or update "
            f"UNTYPED_ARGS. New: {sorted(found - UNTYPED_ARGS)}; gone: {sorted(UNTYPED_ARGS - found)}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netspec.devtools.schemagen [-o PATH] [--check]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m netspec.devtools.schemagen", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="schema file to write (default: the packaged copy and schemas/ at the repository root)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is not up to date")
    args = parser.parse_args(argv)
    text = render(generate())
    outputs = [args.output] if args.output is not None else [PACKAGED, EDITOR_COPY]
    if args.check:
        stale = [o for o in outputs if not o.exists() or o.read_text(encoding="utf-8") != text]
        for o in stale:
            print(f"{o} is stale: run `make schema`", file=sys.stderr)
        if not stale:
            print(" and ".join(map(str, outputs)) + " up to date")
        return 1 if stale else 0
    for o in outputs:
        o.parent.mkdir(parents=True, exist_ok=True)
        o.write_text(text, encoding="utf-8")
        print(f"wrote {o} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
