"""Setup functions of the hostile corpus: ``# setup: module.function args`` in a case calls
tests/hostile_setups/<module>.py:function(tmp, spec, *args) before the run (see tests/hostile_runner.py).

Each helper prefix has its own module. A function creates what its case needs inside ``tmp`` (the case's
directory) and may return a Path that replaces the spec path on the command line.
"""
