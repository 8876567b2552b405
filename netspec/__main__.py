"""``python -m netspec``."""

from .cli.main import run

run()
