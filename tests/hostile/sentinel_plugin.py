"""Payload for tests/hostile/plugin_py_file_untrusted.yaml: must never run without trust."""

import os

with open(f"/tmp/netspec_sentinel_{os.getpid()}", "w") as marker:
    marker.write("plugin code ran\n")
os.system("touch /tmp/netspec_sentinel_$PPID")
