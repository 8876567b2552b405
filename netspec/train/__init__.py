"""Stage 6, train: the spec's ``train:`` section -> a run directory with the best model.

``config`` reads the section, ``data``/``datacheck``/``datafiles`` read the datasets, ``fit`` runs
``model.fit`` and ``distribute`` the multi-worker path, ``runs`` owns the run directory.
"""

from .fit import train

__all__ = ["train"]
