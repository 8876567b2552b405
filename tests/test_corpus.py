"""The golden corpus: every file in specs/invalid fails with its expected message, line and column;
every file in specs/valid (and the shipped specs/) loads.

An invalid case starts with comment lines:
    # expect: LINE:COL message fragment
    # hint: fragment of the did-you-mean hint      (optional)
    # stage: validate|check|build                 (optional; default: load)
"""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec

from conftest import SPECS, TEST_SPECS, comment_headers, error_for

INVALID = sorted((TEST_SPECS / "invalid").glob("*.yaml"))
VALID = sorted((TEST_SPECS / "valid").glob("*.yaml")) + sorted(SPECS.glob("*.yaml"))


def expectations(path: Path) -> dict[str, str]:
    return comment_headers(path, ("expect", "hint", "stage"))


def test_corpus_is_big_enough():
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid(path: Path):
    exp = expectations(path)
    where, _, fragment = exp["expect"].partition(" ")
    line, col = (int(x) for x in where.split(":"))
    err = error_for(path, stage=exp.get("stage", "load"))
    assert fragment in err.message, f"{err}"
    assert (err.line, err.column) == (line, col), f"{err}"
    assert err.file == str(path)
    if "hint" in exp:
        assert err.hint and exp["hint"] in err.hint, f"{err}"
    rendered = str(err)
    assert rendered.startswith(f"{path}:{line}:{col}: ")


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_loads(path: Path):
    spec = netspec.load(path, trust_plugins=True)  # the shipped specs' plugins are ours
    assert spec.graph.nodes


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_specs_declare_the_schema(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/netspec.schema.json"
