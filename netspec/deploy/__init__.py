"""Using an exported model: what an artifact carries (``stamps``, ``inspect``) and how to feed it.

Every artifact netspec writes (``.keras``, ``.onnx``, ``.tflite``, OpenVINO ``.xml``) carries a
``{str: str}`` mapping of netspec metadata: its version, the resolved spec and its SHA-256, the
target, the gate's figures and the deployment contract (:mod:`netspec.contract`). :mod:`.stamps`
reads it back from any of them, as untrusted data; :mod:`.inspect` reports it.
"""
