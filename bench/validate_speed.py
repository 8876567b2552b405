"""`netspec validate specs/resnet50.yaml` as a whole process, against a bare `python -c pass`.

Target (issue 2): under 0.3 s on the 2-core reference machine.
"""

from __future__ import annotations

import sys

from _util import BIN, median, time_process

RUNS = 15


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else "specs/resnet50.yaml"
    validate = [str(BIN / "netspec"), "validate", spec]
    bare = [sys.executable, "-c", "pass"]
    # Bytecode as an installed package has it (this machine sets PYTHONDONTWRITEBYTECODE), and a warm file cache.
    time_process([sys.executable, "-m", "compileall", "-q", "netspec"])
    time_process(validate)
    v, b = [], []
    for _ in range(RUNS):  # interleaved, so both see the same machine load
        v.append(time_process(validate))
        b.append(time_process(bare))
    mv, mb = median(v), median(b)
    print(f"netspec validate {spec}: median {mv * 1000:.0f} ms over {RUNS} runs "
          f"(min {min(v) * 1000:.0f}, max {max(v) * 1000:.0f})")
    print(f"python -c pass:                   median {mb * 1000:.0f} ms (interpreter start-up)")
    print(f"target < 300 ms: {'met' if mv < 0.3 else 'NOT MET'}")


if __name__ == "__main__":
    main()
