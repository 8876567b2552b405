"""Stage 4, resolve: a validated document -> a :class:`~netspec.graph.Graph`.

``validate`` checks the document against the schema, ``resolver`` evaluates params and refs,
``scope`` names entries, ``repeats`` runs repeat, when and chain around a node, ``blocks`` expands
parametrised blocks and ``structure`` bounds the expansion before it happens. No Keras here:
``netspec validate`` stops after this stage.
"""
