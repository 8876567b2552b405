"""Datasets as arrays: the library form of the spec's ``train: data:`` sources."""

from .train.data import load_arrays, read_split

__all__ = ["load_arrays", "read_split"]
