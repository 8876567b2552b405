"""Keras layer classes -> JSON Schema definitions (argument types, node forms, rendering)."""
