"""The export report: what an export wrote and proved, as text (``netspec export``) and as JSON (``--format json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formats import FORMATS
from .targets import Target
from .verify import GateResult


@dataclass
class ExportReport:
    """What an export wrote and proved. ``to_dict`` is the ``--format json`` output."""

    file: str
    target: Target
    size_bytes: int = 0
    nodes: int = 0
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"shape", "dtype"}
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"shape"}
    rewrites: list[str] = field(default_factory=list)
    calibration: str | None = None
    accuracy: dict[str, dict[str, Any]] | None = None  # output -> {"samples", "keras", "export", "change"}
    gate: GateResult | None = None
    latency_ms: dict[str, dict[int, float]] = field(default_factory=dict)  # "export"/"keras" -> batch -> ms
    seconds: dict[str, float] = field(default_factory=dict)  # "convert", "gate", "total"
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` output (the embedded resolved spec left out)."""
        return {"ok": bool(self.gate and self.gate.ok), "file": self.file, "target": self.target.to_dict(),
                "size_bytes": self.size_bytes, "nodes": self.nodes, "inputs": self.inputs, "outputs": self.outputs,
                "rewrites": self.rewrites, "calibration": self.calibration, "accuracy": self.accuracy,
                "gate": self.gate.to_dict() if self.gate else None, "latency_ms": self.latency_ms,
                "seconds": self.seconds, "warnings": self.warnings, "metadata": {k: v for k, v in self.metadata.items() if k != "netspec.spec"}}

    def gate_figures(self) -> str:
        """The gate's figures as the artifact carries them (``netspec.gate``, JSON): per output the worst
        max |error|, its bound and the output's range, top-1 agreement and the fp32 noise-scaled bound
        when it was used; the checks, held-out accuracy, and why the gate batches were limited."""
        import json

        from .verify import top1_totals

        gate = self.gate
        assert gate is not None and gate.ok  # stamped only into an artifact whose gate passed
        outputs: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(p.output for p in gate.parity):
            runs = [p for p in gate.parity if p.output == name]
            worst = max(runs, key=lambda p: p.error_vs_range)
            agreed, decisive = top1_totals(runs)
            outputs[name] = {"max_abs_error": worst.max_abs_error, "bound": worst.bound, "span": worst.span,
                             "comparisons": len(runs), "top1_agreement": agreed / decisive if decisive else None}
            scaled = [p.noise for p in runs if p.noise is not None and "bound" in p.noise]
            if scaled:  # over the absolute fp32 bound, passed within K x Keras's own float32 error
                outputs[name]["noise"] = max(scaled, key=lambda n: n["e_export"] / n["bound"])
        return json.dumps({"ok": True, "precision": gate.precision, "checks": gate.checks, "outputs": outputs,
                           "accuracy": self.accuracy, "batch_limit": gate.batch_limit},
                          sort_keys=True, separators=(",", ":"))

    def text(self) -> str:
        """What ``netspec export`` prints."""
        t = self.target
        fmt = FORMATS[t.format]
        batch = "dynamic batch" if t.batch_size is None else f"batch {t.batch_size}"
        lines = [f"wrote {self.file} ({_size(self.size_bytes)}, {fmt.describe(t)}, {t.precision}, {batch}, "
                 f"{self.nodes} {fmt.unit})",
                 "  inputs:  " + ", ".join(f"{k} {_shape(v['shape'])} {v['dtype']}" for k, v in self.inputs.items()),
                 "  outputs: " + ", ".join(f"{k} {_shape(v['shape'])}" for k, v in self.outputs.items())]
        lines += [f"  rewritten: {r}" for r in self.rewrites]
        if self.calibration:
            lines.append(f"  calibration: {self.calibration}")
        if self.gate:
            lines.append("  gate: passed: " + "; ".join(self.gate.checks))
            lines += [f"    {line}" for line in self.gate.summary()]
        for name, acc in (self.accuracy or {}).items():
            lines.append(f"  held-out accuracy of {name} ({acc['samples']} samples): Keras {acc['keras']:.2%}, "
                         f"export {acc['export']:.2%} ({acc['change']:+.2%})")
        if self.latency_ms:
            lat = self.latency_ms
            lines.append("  latency (median ms): " + "; ".join(
                f"batch {b}: {fmt.runtime} {lat['export'][b]:.2f}, Keras tf.function {lat['keras'][b]:.2f} "
                f"({lat['keras'][b] / lat['export'][b]:.1f}x)" for b in lat["export"]))
        lines += [f"  warning: {w}" for w in self.warnings]
        s = self.seconds
        lines.append(f"  time: {s.get('total', 0):.1f} s (convert {s.get('convert', 0):.1f} s, "
                     f"gate {s.get('gate', 0):.1f} s)")
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def _shape(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
