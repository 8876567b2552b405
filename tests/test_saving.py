"""netspec.load_model: safe_mode loading with errors users can act on; atomic saving."""

from __future__ import annotations

import pytest

import netspec
from netspec.saving import atomic_path

from conftest import SPECS


@pytest.fixture(scope="module")
def pam_file(keras, tmp_path_factory):
    path = tmp_path_factory.mktemp("pam") / "pam.keras"
    netspec.load(SPECS / "danet_pam.yaml", trust_plugins=True).build().save(path)
    return path


def test_user_layers_need_their_plugin(pam_file):
    with pytest.raises(netspec.NetspecError) as info:
        # A fresh Keras name table would be needed to see the miss; the registry is process-wide,
        # so hide the classes the plugin registered.
        import keras

        saved = keras.saving.get_custom_objects().copy()
        keras.saving.get_custom_objects().clear()
        try:
            netspec.load_model(pam_file)
        finally:
            keras.saving.get_custom_objects().update(saved)
    assert "which is not registered" in info.value.message
    assert "plugins" in info.value.hint


def test_loads_with_plugins(pam_file):
    model = netspec.load_model(pam_file, plugins=(str(SPECS / "seed_layers.py"),))
    assert model.count_params() == 11_317


@pytest.mark.parametrize("name, fragment", [
    ("missing.keras", "no such model file"),
    ("spec.yaml", "expected a .keras model file"),
    ("garbage.keras", "cannot load"),
])
def test_bad_files(keras, tmp_path, name, fragment):
    path = tmp_path / name
    if name != "missing.keras":
        path.write_bytes(b"not a zip archive")
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load_model(path)
    assert fragment in info.value.message


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.keras"]


def test_atomic_path_gives_plain_file_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644
