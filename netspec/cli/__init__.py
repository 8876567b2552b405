"""Stage 9, the command line: ``netspec validate|check|build|train|export|import|plot|schema``."""

from .app import main, run

__all__ = ["main", "run"]
