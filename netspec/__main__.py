"""``python -m netspec``."""

from .cli.app import run

run()
