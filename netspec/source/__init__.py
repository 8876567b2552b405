"""Stage 1, source: what users hand netspec, read safely.

YAML specs (``loader``: line/column source maps, YAML 1.2 scalars, alias and size limits), data paths
(``paths``: confinement to the spec's tree, ``--data-root`` and the shipped datasets) and ``.keras``
archives (``kerasfile``/``kerasrules``/``kerascost``: checked and costed before Keras opens them).
Nothing here imports Keras or TensorFlow.
"""
