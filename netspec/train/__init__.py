"""Stage 6, train: the spec's ``train:`` section -> a run directory with the best model.

``config`` reads the section, ``data``/``datacheck``/``datafiles`` read the datasets, ``fit`` runs
``model.fit`` (and hands ``distribute: multi_worker`` to ``distribute``), ``session`` holds what both
paths share (compile, pipelines, epoch callbacks, the end of a run), ``runs`` owns the run directory.
Imports inside the stage go one way: names, datafiles <- datacheck <- config <- data, runs <- session
<- distribute <- fit.
"""

from .fit import train

__all__ = ["train"]
