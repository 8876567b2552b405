"""Stage 5, build: a :class:`~netspec.graph.Graph` -> a functional Keras model.

``compiler`` builds the model (shapes inferred layer by layer, located errors), ``inputspec``
applies ``input_spec:`` constraints, ``expression`` is the Keras layer behind ``expr:`` nodes
(registered as ``netspec>Expression``) and ``saving`` writes and safely loads ``.keras`` files.
"""
