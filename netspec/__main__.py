"""``python -m netspec``."""

from .cli import run

run()
