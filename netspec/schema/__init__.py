"""Stage 3, schema: the JSON Schema of the spec language and the layer catalogue built on it.

``netspec.schema.json`` (package data) is generated from the installed Keras by
``netspec.devtools.schemagen``; ``schemafile`` reads it, ``catalog`` lists the layers it defines,
``validator`` checks documents against it (``keywords`` says what each keyword means) and holds a
``messages`` object that explains each failure as an ``issue.Issue``; ``recheck`` validates ``${}``
results, ``registry`` and ``plugins`` add user layer classes, and ``derive`` turns a Keras layer
class into its schema (used by the generator and by ``netspec schema --plugins``).
"""
