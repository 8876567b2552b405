"""Stage 8, importing: a Keras model -> a netspec spec that builds the same model.

``importer`` drives it, ``graph`` walks the Keras graph, ``values``/``args`` turn layer configs
into spec values, ``folding`` finds repeated blocks, ``specwriter`` emits YAML and ``check``
rebuilds the spec and compares it with the model.
"""
