"""Stage 2, expressions: the safe expression language of ``${...}`` params and ``expr:`` nodes.

``parse`` is the one parsing gate both languages pass, ``interp`` evaluates ``${}`` interpolations,
``check`` checks ``expr:`` programs, ``table`` is the function table both draw from, ``values``
folds constants and ``cost`` is the accountant that refuses an operation before it computes a
result too large. Nothing here imports Keras.
"""
