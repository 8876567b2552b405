"""The keras.applications zoo through netspec: import, export to onnx-cpu, onnx-int8 and litert, measured.

For every model in ``keras.applications`` (listed programmatically, as ``netspec import --keras-app``
lists them), in its own process with a timeout and a memory cap:
  1. ``netspec import --keras-app NAME`` (the CLI, as a user runs it; ConvNeXt with a LayerScale plugin);
  2. the spec built with seeded random weights made lively (tests/export_cases.py ``lively``: batch
     statistics from generated images, so outputs vary and parity means something), saved as weights,
     in a child process of its own (TensorFlow keeps the memory of those eager passes);
  3. a bare ``model.export(path, format="onnx")`` of the same Keras model, timed;
  4. ``netspec.export.export`` to each target, timed (the gate's seconds reported apart), with the
     gate's result and worst error, or the NetspecError's first line when it refuses or fails;
  5. at batch 1: onnxruntime latency of the fp32 export against a compiled ``tf.function``; the int8
     export's speed-up over fp32 and its top-1 agreement with fp32 on 64 generated inputs.
Results are cached per model in bench/zoo-results.json, so a rerun resumes where it stopped;
docs/zoo.md is rendered from that cache.

Usage:
  python bench/zoo.py [--models A,B] [--targets onnx-cpu,onnx-int8,litert] [--timeout 900]
                      [--memory-gb 10] [--redo] [--retry-failed]
  python bench/zoo.py --render           # docs/zoo.md from the cache only (no TensorFlow)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "zoo-results.json"
DOC = ROOT / "docs" / "zoo.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import feed_for, in_chunks, watch  # noqa: E402
from zoo_int8 import int8_in_keras, int8_plain_ort  # noqa: E402,F401  (is an int8 failure int8's own?)
from zoo_render import TARGETS, describe_options, plain_verdict, render  # noqa: E402  (docs/zoo.md from the cache)

# Models whose layers are no core netspec layer: a user plugin registers them (as a user would).
CONVNEXT_PLUGIN = '''"""Register keras.applications' ConvNeXt LayerScale as a netspec user layer."""
import netspec
from keras.src.applications.convnext import LayerScale

netspec.register_layer(LayerScale)
'''
PLUGINS = {"ConvNeXt": ("convnext_layers.py", CONVNEXT_PLUGIN)}  # name prefix -> (file, source)


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def last_line(text: str) -> str:
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def lively_samples(infos) -> int:
    """Images for the eager forward passes that set BatchNormalization statistics and the head's scale: 16 at
    224x224, fewer at larger sizes (as many pixels in all), at least 2. EfficientNetB7's 600x600 at 16 images
    kept ~10 GiB of eager activations alive and was stopped before netspec ran."""
    pixels = max((math.prod(d or 8 for d in i.shape[:-1]) for i in infos), default=1)
    return max(2, min(16, (16 * 224 * 224) // max(pixels, 1)))


# -- the worker: one model, in its own process ---------------------------------------------------


class Worker:
    """Runs one model; writes its (partial) result after every step, so a timeout keeps what was done."""

    def __init__(self, name: str, targets: list[str], out: Path, work: Path, logit_std: float,
                 plain_int8: bool = False, plain_source: str = "keras") -> None:
        self.name, self.targets, self.out, self.work, self.logit_std = name, targets, out, work, logit_std
        self.plain_int8 = plain_int8  # onnxruntime's own int8 of the bare export, even without an int8 target
        self.plain_source = plain_source  # what that int8 starts from: "keras" (model.export) or "netspec" (fp32)
        self.result: dict = {"model": name, "targets": {}}

    def save(self) -> None:
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.result, indent=1))
        tmp.replace(self.out)

    def run(self) -> None:
        spec_path = self.import_spec()
        if spec_path is None or not self.prepare_apart():
            return
        self.export_all(spec_path)

    def prepare_apart(self) -> bool:
        """:meth:`prepare` in a child process, so that its eager Keras passes are not held by the process that
        exports: TensorFlow keeps their memory after they end. EfficientNetV2M's worker went past 20 GiB with the
        int8 target alone; its int8 export by itself peaks at 7.4 GiB (bench/export_memory.py)."""
        argv = [sys.executable, __file__, "--worker", self.name, "--prepare", "--result", str(self.out),
                "--logit-std", str(self.logit_std)]
        proc = subprocess.run(argv, cwd=self.work, capture_output=True, text=True)
        self.result = json.loads(self.out.read_text())
        if proc.returncode != 0:
            why = last_line(proc.stderr or proc.stdout)
            self.result["error"] = f"preparing the model (exit {proc.returncode}): {why}"
            self.save()
            return False
        return True

    def prepare(self) -> None:
        """The spec built with seeded weights made lively (BatchNormalization statistics, a confident head), its
        sensitivity measured, the weights saved for every export."""
        import keras
        import netspec
        from netspec.export.quantize import describe_inputs, generate

        sys.path.insert(0, str(ROOT / "tests"))
        from export_cases import lively

        self.result = json.loads(self.out.read_text())
        keras.utils.set_random_seed(0)  # the same untrained weights on every run
        spec = netspec.load(self.work / f"{self.name}.yaml", trust_plugins=True)
        model = spec.build()
        infos = sized(describe_inputs(model), spec)
        n = lively_samples(infos)
        lively(model, generate(infos, n, seed=5))
        self.result["logit_scale"] = confident(model, generate(infos, n, seed=6), self.logit_std)
        self.result["logit_std"] = self.logit_std
        self.result["sensitivity_db"] = sensitivity(model, generate(infos, n, seed=9), infos)  # n: as lively, bounded
        model.save_weights(self.work / WEIGHTS)
        self.result["params"] = int(model.count_params())
        self.result["inputs"] = {i.name: list(i.shape) for i in infos}
        self.save()

    def import_spec(self) -> Path | None:
        """``netspec import --keras-app``, run as a user would (the CLI, in its own process)."""
        spec_path = self.work / f"{self.name}.yaml"
        argv = [sys.executable, "-m", "netspec", "import", "--keras-app", self.name, "-o", str(spec_path),
                "--format", "json"]
        for prefix, (file, source) in PLUGINS.items():
            if self.name.startswith(prefix):
                (self.work / file).write_text(source)
                argv += ["--plugins", file]
        t = time.perf_counter()
        proc = subprocess.run(argv, cwd=self.work, capture_output=True, text=True)
        self.result["import_s"] = time.perf_counter() - t
        if proc.returncode != 0:
            self.result["error"] = "import: " + first_line(proc.stderr or proc.stdout)
            self.save()
            return None
        info = json.loads(proc.stdout)
        self.result.update(params=info.get("params"), layers=info.get("layers"), lines=info.get("lines"))
        self.save()
        return spec_path

    def export_all(self, spec_path: Path) -> None:
        import keras
        import netspec
        import onnxruntime  # noqa: F401  (imported before any timing: both exports use them)
        import tf2onnx  # noqa: F401
        from netspec.export import export
        from netspec.export.signature import io_names
        from netspec.export.quantize import describe_inputs, generate
        from netspec.export.targets import BUILTIN

        spec = netspec.load(spec_path, trust_plugins=True)
        model = spec.build()
        weights = self.work / WEIGHTS
        model.load_weights(weights)
        infos = sized(describe_inputs(model), spec)
        n = lively_samples(infos)
        names = io_names(model, spec.graph)

        for target in self.targets:
            row = self.export_target(export, spec, BUILTIN[target], weights)
            self.result["targets"][target] = row
            self.save()
        row = self.result["targets"].get("onnx-int8", {"ok": True})
        if self.plain_int8 or (not row["ok"] and "gate" in row):
            self.judge_int8(export, spec, model, weights, names, n, row)
        self.measure(model, infos, generate)
        if self.plain_source == "keras":  # else Keras's own export is known to go over the memory cap
            self.bare_export(model, names)

    def judge_int8(self, export, spec, model, weights: Path, names, n: int, row: dict) -> None:
        """A failed int8 export: is the loss netspec's, or int8's with onnxruntime on these weights?

        First onnxruntime's own int8 of Keras's own export (:func:`zoo_int8.int8_plain_ort`); the driver files
        it under the model's onnx-int8 row. Only when that does better than netspec's export, or cannot run,
        does a user's next step follow: other calibration methods and ``keep_float:`` (:meth:`retry_int8`),
        with int8 simulated in Keras (:func:`zoo_int8.int8_in_keras`) deciding whether keep_float can help.
        """
        from netspec.export.targets import BUILTIN

        target = BUILTIN["onnx-int8"]
        source = self.plain_start(export, spec, model, names, weights)
        if source is not None:
            self.result["int8_plain_started"] = True
            self.save()
            # a model whose Keras export goes over the cap runs one sample at a time (NASNetLarge: 21 GiB at 7)
            one = 1 if self.plain_source == "netspec" else None
            self.result["int8_plain_ort"] = int8_plain_ort(model, source, spec, target, n, self.work,
                                                           self.plain_source, run_chunk=one)
            del self.result["int8_plain_started"]
            self.save()
        if "gate" not in row:  # --plain-int8 for a cached row: the comparison alone
            return
        if plain_verdict({**row, "plain_ort": self.result.get("int8_plain_ort") or {}}) == "outside":
            row["retries"] = "not tried: onnxruntime's own int8 of Keras's export fails the same gate, no better"
            return
        def keep_float_can_help() -> bool:  # asked only once the calibration options are spent
            row["in_keras"] = int8_in_keras(model, spec, target, n)
            self.save()
            return row["in_keras"]["ok"]

        # keep_float: of named nodes helps an export with a hot node; when int8 itself fails everywhere (in Keras
        # too), only the calibration methods are tried
        self.retry_int8(export, spec, target, weights, row, keep_float=keep_float_can_help)
        self.save()

    def plain_start(self, export, spec, model, names, weights: Path) -> Path | None:
        """The float ONNX model onnxruntime's own int8 starts from: Keras's own export, or (``plain_source``
        "netspec", for a model whose Keras export goes over the memory cap: NASNetLarge's passed 20 GiB, where
        netspec's peaks lower since it collects tf2onnx's dead graph copies) netspec's fp32 export, which its
        own gate proved equal to Keras; :func:`zoo_int8.int8_plain_ort` checks it again before using it."""
        if self.plain_source == "keras":
            self.bare_export(model, names)
            return self.work / "bare.onnx" if "bare_export_s" in self.result else None
        fp32 = self.work / "onnx-cpu.onnx"
        if not fp32.is_file():  # `netspec export`, as a user runs it, in its own process: this one stays lean
            argv = [sys.executable, "-m", "netspec", "export", str(self.work / f"{self.name}.yaml"), "--target",
                    "onnx-cpu", "--weights", str(weights), "-o", str(fp32), "--trust-plugins"]
            proc = subprocess.run(argv, cwd=self.work, capture_output=True, text=True)
            if proc.returncode != 0:
                why = first_line(proc.stderr or proc.stdout)
                self.result["int8_plain_ort"] = {"ok": None, "source": "netspec",
                                                  "unavailable": f"netspec's fp32 export failed: {why}"}
                return None
        return fp32

    def bare_export(self, model, names) -> None:
        """A bare Keras export of the same model: what netspec's export time is compared with, and what
        onnxruntime's own int8 starts from. Once, and last unless an int8 failure needs it: it takes more memory
        than netspec's (tf2onnx's optimizer keeps dead graph copies; netspec collects them), and a stop over the
        cap here loses only the ratio (recorded as ``bare_export_error`` by the driver)."""
        from netspec.export.signature import input_signature

        if "bare_export_s" in self.result or "bare_export_error" in self.result:
            return
        self.result["bare_export_started"] = True
        self.save()
        t = time.perf_counter()
        try:
            model.export(str(self.work / "bare.onnx"), format="onnx", verbose=False,
                         input_signature=input_signature(model, names, None))
            self.result["bare_export_s"] = time.perf_counter() - t
        except Exception as e:  # recorded, not fatal: netspec's own export is what is measured
            self.result["bare_export_error"] = first_line(f"{type(e).__name__}: {e}")
        del self.result["bare_export_started"]
        self.save()

    def export_target(self, export, spec, target, weights: Path) -> dict:
        """One export, as ``netspec export`` runs it: its result, time, gate figures and located failure."""
        import netspec

        out = self.work / f"{target.name}{target.suffix}"
        row: dict = {}
        t = time.perf_counter()
        try:
            report = export(spec, target, out, weights=str(weights), latency=False)
            row["ok"] = True
        except netspec.NetspecError as e:
            row.update(ok=False, error=first_line(e.message if hasattr(e, "message") else e), kind=e.kind)
            report = getattr(e, "report", None)
        except Exception as e:  # an internal error: recorded with its type, as a bug to report
            row.update(ok=False, error=first_line(f"internal error: {type(e).__name__}: {e}"), kind="internal")
            report = None
        if "error" in row:  # the temporary directory is noise in the cached report
            row["error"] = row["error"].replace(str(self.work) + os.sep, "")
        row["wall_s"] = time.perf_counter() - t
        if report is not None:
            row["seconds"] = report.seconds
            row["size_bytes"] = report.size_bytes
            row["rewrites"] = report.rewrites
            if report.gate is not None:
                row["gate"] = gate_figures(report.gate)
        return row

    def retry_int8(self, export, spec, target, weights: Path, row: dict, keep_float=lambda: True) -> None:
        """What a user does with a failed int8 report: another calibration method, weights per tensor
        (``per_channel: false``), then ``keep_float:``
        of the nodes the report names, until the gate passes (at most :data:`RETRIES` exports).

        ``row`` gets ``attempts`` (each option set and its outcome) and, when one passes, ``passed_with``
        and that export's figures (the first failure stays in ``first_error``).
        """
        from dataclasses import replace

        attempts: list[dict] = []
        keep: tuple[str, ...] = ()
        last: dict | None = None
        options = [{"method": m} for m in ("percentile", "entropy")] + [{"method": "minmax", "per_channel": False}]
        plain = self.result.get("int8_plain_ort") or {}
        ratio = {k: (v or {}).get("error_vs_range") for k, v in plain.items() if isinstance(v, dict)}
        if None not in (ratio.get("minmax per-tensor"), ratio.get("minmax")) and \
                ratio["minmax per-tensor"] < ratio["minmax"]:  # what did better for onnxruntime, first
            options.insert(0, options.pop())
        can_keep: bool | None = None
        first = (row.get("gate") or {}).get("error_vs_range")
        best = {**row, "ratio": first, "method": target.calibration.method} if first is not None else None
        for _ in range(RETRIES):
            if options:
                opt = options.pop(0)
            elif not (can_keep := keep_float() if can_keep is None else can_keep):
                break
            else:  # keep in float what the report names (its worst node, those where the error grows): the
                # latest keep_float attempt's report, else the best method's
                report = last if keep and last is not None else (best or row)
                named = located_nodes((report.get("gate") or {}).get("located") or {})
                new = tuple(n for n in named if n not in keep)
                if not new:
                    break
                keep = keep + new
                opt = {"method": (best or {}).get("method", "minmax"), "keep_float": list(keep)}
                if (best or {}).get("per_channel") is False:
                    opt["per_channel"] = False
            calib = replace(target.calibration, method=opt["method"])
            trial = replace(target, calibration=calib, keep_float=tuple(opt.get("keep_float", ())),
                            per_channel=opt.get("per_channel", target.per_channel))
            got = last = self.export_target(export, spec, trial, weights)
            attempts.append({**opt, "ok": got["ok"], "error": got.get("error"),
                             "error_vs_range": (got.get("gate") or {}).get("error_vs_range")})
            row["attempts"] = attempts
            self.save()
            if got["ok"]:
                row.update({k: v for k, v in got.items() if k != "wall_s"}, first_error=row.pop("error", None),
                           passed_with=describe_options(opt))
                row.pop("kind", None)
                return
            ratio = (got.get("gate") or {}).get("error_vs_range")
            if ratio is not None and (best is None or ratio < best["ratio"]):
                best = {**got, "ratio": ratio, "method": opt["method"], "per_channel": opt.get("per_channel", True)}

    def measure(self, model, infos, generate) -> None:
        """Batch-1 latency (onnxruntime vs compiled tf.function), int8 speed-up and top-1 agreement."""
        import numpy as np
        import onnxruntime as ort
        import tensorflow as tf

        rows = self.result["targets"]
        x1 = generate(infos, 1, seed=9)
        fp32 = self.work / "onnx-cpu.onnx"
        if rows.get("onnx-cpu", {}).get("ok"):
            fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
            arg = x1[infos[0].name] if len(infos) == 1 else [x1[i.name] for i in infos]
            self.result["tf_function_ms"] = median_ms(lambda: fn(arg))
            sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
            feed = feed_for(sess, x1)
            rows["onnx-cpu"]["ort_ms"] = median_ms(lambda: sess.run(None, feed))
            self.save()
        int8 = self.work / "onnx-int8.onnx"
        if rows.get("onnx-int8", {}).get("ok") and fp32.exists():
            q = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
            rows["onnx-int8"]["ort_ms"] = median_ms(lambda: q.run(None, feed_for(q, x1)))
            rows["onnx-int8"]["speedup"] = rows["onnx-cpu"]["ort_ms"] / rows["onnx-int8"]["ort_ms"]
            xs = generate(infos, 64, seed=11)
            chunks = [{k: v[i:i + 8] for k, v in xs.items()} for i in range(0, 64, 8)]
            want = np.concatenate([sess.run(None, feed_for(sess, c))[0] for c in chunks]).reshape(64, -1)
            got = np.concatenate([q.run(None, feed_for(q, c))[0] for c in chunks]).reshape(64, -1)
            same = want.argmax(1) == got.argmax(1)
            top2 = np.sort(want, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 0.1 * float(want.max() - want.min())
            q2 = np.sort(got, axis=1)[:, -2:]
            rows["onnx-int8"]["int8_ties"] = int((q2[:, 1] == q2[:, 0]).sum())  # argmax then means nothing
            rows["onnx-int8"]["top1_all"] = float(same.mean())
            rows["onnx-int8"]["top1_clear"] = float(same[clear].mean()) if clear.any() else None
            rows["onnx-int8"]["clear"] = int(clear.sum())
            self.save()


WEIGHTS = "lively.weights.h5"  # written by Worker.prepare, read by every export
RETRIES = 5  # int8 exports tried after a failed gate (each a full calibration and gate)


def located_nodes(located: dict) -> list[str]:
    """The nodes a failed int8 gate's report names: the worst, then those where the error grows most."""
    names = [(located.get("worst") or {}).get("node")] + [g.get("node") for g in located.get("grows") or []]
    return [n for k, n in enumerate(names) if n and n not in names[:k]]


def sized(infos: list, spec) -> list:
    """The inputs with their unknown dimensions at the spec's ``example_shape`` (MobileNetV3's 224x224), as the
    gate feeds them: generated samples at the fallback size of 8 are too small for a network that downsamples
    32 times (its compiled ``tf.function`` fails on them)."""
    from dataclasses import replace

    examples = {d.name: getattr(d, "example_shape", None) for d in spec.graph.inputs}
    return [replace(i, shape=tuple(examples[i.name])) if examples.get(i.name) and None in i.shape else i
            for i in infos]


def sensitivity(model, x: dict, infos, chunk: int = 2) -> float:
    """Output SQNR (dB) of the float32 Keras model for Gaussian input noise at 40 dB SQNR, about int8's rounding of
    its input: how much the weights themselves amplify a perturbation. Random weights can be chaotic: measured
    (lively weights) MobileNet 6.1 dB, MobileNetV2 7.5, ResNet50 6.8, EfficientNetB0 14.9. int8 adds such
    perturbations at every layer, so a model that turns 40 dB into single digits fails any int8 bound for a
    reason in its weights, not in the export; trained networks are far less sensitive."""
    import numpy as np

    rng = np.random.default_rng(1)
    noisy = {}
    for k, v in x.items():
        if not np.issubdtype(v.dtype, np.floating):
            noisy[k] = v  # integer inputs (ids) are not perturbed
            continue
        noise = rng.normal(size=v.shape).astype(v.dtype)
        noise *= np.sqrt((v.astype(np.float64) ** 2).mean() / max((noise.astype(np.float64) ** 2).mean(), 1e-30)) * 10 ** (-40 / 20)
        noisy[k] = v + noise

    def run(feed: dict) -> np.ndarray:
        def one(part: dict) -> np.ndarray:
            args = part[infos[0].name] if len(infos) == 1 else [part[i.name] for i in infos]
            out = model(args, training=False)
            return np.concatenate([np.asarray(o, dtype=np.float64).reshape(len(np.asarray(o)), -1)
                                   for o in (out if isinstance(out, (list, tuple)) else [out])], axis=1)

        return in_chunks(one, feed, chunk)

    clean, perturbed = run(x), run(noisy)
    err = float(((clean - perturbed) ** 2).mean())
    return float(10 * np.log10(float((clean ** 2).mean()) / err)) if err > 0 else float("inf")


def confident(model, x: dict, std: float = 4.0) -> float | None:
    """Scale a softmax classifier's last kernel so its logits spread like a trained one's; returns the factor.

    An untrained 1000-way softmax is uniform to ~1e-3: below int8's output grid (1/255), so every
    int8 output ties and neither the gate nor top-1 agreement can judge it. The head is a Dense
    with a softmax activation, or (MobileNet) an Activation("softmax") after a 1x1 Conv2D and a
    Reshape; only the last layer with a kernel changes (kernel and bias scaled: the logits scale
    linearly), and the same weights serve Keras and every export.

    The logits are not centred: untrained logits share a per-class offset larger than their variation
    between inputs. Taking each class's mean away (tried) leaves only that variation, which these
    random weights make chaotic: the fp32 model then turns 40 dB input noise into -0.8 to 8 dB
    (MobileNet, MobileNetV2, NASNetMobile, EfficientNetB0), and no int8 export, or int8 simulated in
    Keras, keeps it.
    """
    import keras
    import numpy as np

    head = model.layers[-1]
    if getattr(head, "activation", None) is None or getattr(head.activation, "__name__", "") != "softmax":
        return None
    args = [x[t.name] for t in model.inputs] if len(model.inputs) > 1 else x[model.inputs[0].name]
    if isinstance(head, keras.layers.Dense):
        last = head
        trunk = keras.Model(model.inputs, head.input)
        features = in_chunks(lambda part: np.asarray(trunk(part, training=False)), args)
        logits = features @ np.asarray(head.kernel) + (np.asarray(head.bias) if head.use_bias else 0.0)
    else:
        last = next((l for l in reversed(model.layers[:-1]) if hasattr(l, "kernel")), None)
        if last is None:
            return None
        trunk = keras.Model(model.inputs, head.input)
        logits = in_chunks(lambda part: np.asarray(trunk(part, training=False)), args)
    factor = std / max(float(logits.std()), 1e-12)
    last.kernel.assign(np.asarray(last.kernel) * factor)
    if getattr(last, "bias", None) is not None:
        last.bias.assign(np.asarray(last.bias) * factor)
    return factor


def gate_figures(gate) -> dict:
    """The gate's verdict and its worst comparison (over every output and batch)."""
    d = {"ok": gate.ok, "failure": first_line(gate.failure) if gate.failure else None}
    finite = [p for p in gate.parity if p.error_vs_range == p.error_vs_range]
    if gate.parity:
        worst = max(finite or gate.parity, key=lambda p: p.error_vs_range)
        d.update(max_abs_error=worst.max_abs_error, error_vs_range=worst.error_vs_range, span=worst.span)
    scaled = [p.noise for p in gate.parity if p.noise and "bound" in p.noise]
    if scaled:  # over the absolute fp32 bound, judged against Keras's own float32 noise (netspec.export.noise)
        d["noise"] = max(scaled, key=lambda n: n["e_export"] / n["bound"])
    if getattr(gate, "batch_limit", None):
        d["batch_limit"] = gate.batch_limit
    if gate.diverging and gate.diverging.get("node"):
        d["diverging"] = gate.diverging["node"]
    if gate.located:  # where a low-precision export departs (int8, fp16): what a user acts on
        d["located"] = {k: ([brief(e) for e in v] if isinstance(v, list) else brief(v))
                        for k, v in gate.located.items() if v}
    return d


def brief(entry: dict) -> dict:
    return {k: entry[k] for k in ("node", "sqnr_db", "drop_db") if k in entry}


def median_ms(fn) -> float:
    """netspec's own latency measure (the export report's), with a longer budget for big models."""
    from netspec.export.pipeline import median_ms as measure

    return measure(fn, budget_s=2.0, min_runs=5, max_runs=100)


# -- the driver: one subprocess per model, cached --------------------------------------------------


def load_cache(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"models": {}}


def save_cache(cache: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def run_model(name: str, targets: list[str], timeout: float, memory_gb: float, logit_std: float,
              plain_int8: bool = False, plain_source: str = "keras") -> dict:
    """One model in its own process (its own session, so a timeout ends it and its children)."""
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, __file__, "--worker", name, "--targets", ",".join(targets), "--result", str(out),
                "--logit-std", str(logit_std), "--plain-source", plain_source] + (["--plain-int8"] if plain_int8 else [])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        log = open(Path(tmp) / "log.txt", "w+")
        t = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        peak, why = watch(proc, memory_gb * 2**30, timeout)
        stop = why and f"stopped: {why} ({'--memory-gb' if 'memory' in why else '--timeout'})"
        result = json.loads(out.read_text()) if out.is_file() else {"model": name, "targets": {}}
        result.update(wall_s=time.perf_counter() - t, peak_rss_gb=peak / 2**30)
        if result.pop("int8_plain_started", False) and (stop or proc.returncode != 0):
            # everything else finished: only onnxruntime's own int8 of Keras's export (the comparison) was cut
            result["int8_plain_ort"] = {"ok": None, "stopped": stop or f"crashed (exit {proc.returncode})"}
        elif result.pop("bare_export_started", False) and (stop or proc.returncode != 0):
            # the targets and measures all finished: only Keras's own export (the ratio's reference) was cut
            result["bare_export_error"] = (f"Keras's own model.export {stop}" if stop
                                           else f"Keras's own model.export crashed (exit {proc.returncode})")
        elif stop or proc.returncode != 0:
            log.seek(0)
            reason = stop or f"worker crashed (exit {proc.returncode}): {last_line(log.read())}"
            result.setdefault("error", reason)
            for target in targets:  # what the stop cut short
                result["targets"].setdefault(target, {"ok": False, "error": reason, "kind": "stopped"})
        log.close()
        return result


def needs_run(entry: dict | None, targets: list[str], retry_failed: bool) -> list[str]:
    """The targets still to run for a model (all of them if the model must be redone)."""
    if entry is None:
        return targets
    done = entry.get("targets", {})
    if retry_failed and (entry.get("error") or any(done.get(t, {}).get("kind") in ("stopped", "internal")
                                                   for t in targets)):
        return targets
    missing = [t for t in targets if t not in done]
    return targets if missing else []  # a worker builds the model anyway: redo its targets together


def needs_plain(entry: dict | None) -> bool:
    """A cached int8 export that failed its gate, not yet compared with onnxruntime's own int8 (or whose
    comparison was cut short)."""
    row = ((entry or {}).get("targets") or {}).get("onnx-int8") or {}
    compared = any(isinstance(v, dict) and "error_vs_range" in v for v in (row.get("plain_ort") or {}).values())
    return row.get("ok") is False and "gate" in row and not compared


def plain_source(entry: dict | None) -> str:
    """What onnxruntime's own int8 starts from: Keras's own export, or netspec's verified fp32 export when Keras's
    went over the memory cap on an earlier run."""
    return "netspec" if "memory cap" in ((entry or {}).get("bare_export_error") or "") else "keras"


def environment() -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("netspec", "keras", "tensorflow", "onnxruntime", "tf2onnx", "ai-edge-litert"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "versions": versions}


def drive(args) -> None:
    from netspec.importing.importer import keras_app_names

    everything = keras_app_names()
    models = everything if not args.models else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(everything))
    if unknown:
        raise SystemExit(f"not in keras.applications: {', '.join(unknown)}")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = sorted(set(targets) - set(TARGETS))
    if bad:
        raise SystemExit(f"unknown target(s) {', '.join(bad)}; choose from {', '.join(TARGETS)}")
    cache = load_cache(args.cache)
    cache["all_models"] = everything
    cache["environment"] = environment()
    for k, name in enumerate(models, 1):
        entry = None if args.redo else cache["models"].get(name)
        todo = needs_run(entry, targets, args.retry_failed)
        if not todo and args.int8_plain and needs_plain(entry):
            print(f"[{k}/{len(models)}] {name}: onnxruntime's own int8 of the bare export ...", flush=True)
            result = run_model(name, [], args.timeout, args.memory_gb, args.logit_std, plain_int8=True,
                               plain_source=plain_source(entry))
            entry["targets"]["onnx-int8"]["plain_ort"] = result.get("int8_plain_ort") or {
                "ok": None, "stopped": result.get("error") or result.get("bare_export_error") or "no result"}
            save_cache(cache, args.cache)
            print(f"    {result['wall_s']:.0f} s, peak {result['peak_rss_gb']:.1f} GiB: "
                  + json.dumps(entry["targets"]["onnx-int8"]["plain_ort"]), flush=True)
            continue
        if not todo:
            print(f"[{k}/{len(models)}] {name}: cached", flush=True)
            continue
        print(f"[{k}/{len(models)}] {name}: {', '.join(todo)} ...", flush=True)
        result = run_model(name, todo, args.timeout, args.memory_gb, args.logit_std,
                           plain_source=plain_source(entry))
        if entry and not args.redo:  # keep the targets that were not rerun
            result["targets"] = {**entry.get("targets", {}), **result["targets"]}
            if not {"bare_export_s", "bare_export_error"} & set(result):  # not rerun: over the cap before
                result.update({k: entry[k] for k in ("bare_export_s", "bare_export_error") if k in entry})
        plain = result.pop("int8_plain_ort", None)
        if plain is not None and "onnx-int8" in result["targets"]:
            result["targets"]["onnx-int8"]["plain_ort"] = plain
        result["date"] = time.strftime("%Y-%m-%d")
        cache["models"][name] = result
        save_cache(cache, args.cache)
        print("    " + summary_line(result), flush=True)
    render(load_cache(args.cache), args.doc)  # as --render would: from the file, in its (sorted) order
    print(f"wrote {args.doc.relative_to(ROOT) if args.doc.is_relative_to(ROOT) else args.doc}")


def summary_line(r: dict) -> str:
    parts = [f"{t}: {'pass' if row.get('ok') else 'FAIL (' + row.get('error', '?') + ')'}"
             for t, row in r.get("targets", {}).items()]
    if r.get("error") and not r.get("targets"):
        parts = [r["error"]]
    return f"{r.get('wall_s', 0):.0f} s, peak {r.get('peak_rss_gb', 0):.1f} GiB; " + "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated keras.applications names (default: all)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated, of " + ", ".join(TARGETS))
    p.add_argument("--timeout", type=float, default=900, help="seconds per model (default 900)")
    p.add_argument("--memory-gb", type=float, default=10, help="resident memory cap per model (default 10)")
    p.add_argument("--cache", type=Path, default=CACHE, help="the per-model results file")
    p.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to write")
    p.add_argument("--redo", action="store_true", help="rerun the models even when cached")
    p.add_argument("--retry-failed", action="store_true", help="rerun models stopped, crashed or failing inside")
    p.add_argument("--logit-std", type=float, default=4.0,
                   help="scale a softmax head so its logits have this standard deviation (default 4)")
    p.add_argument("--int8-plain", action="store_true",
                   help="for cached int8 failures: add onnxruntime's own int8 of Keras's own export, judged alike")
    p.add_argument("--render", action="store_true", help="only write --doc from the cache")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--plain-int8", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--plain-source", choices=("keras", "netspec"), default="keras", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        targets = [t for t in args.targets.split(",") if t]
        worker = Worker(args.worker, targets, args.result, Path.cwd(), args.logit_std, args.plain_int8,
                        args.plain_source)
        worker.prepare() if args.prepare else worker.run()
    elif args.render:
        render(load_cache(args.cache), args.doc)
        print(f"wrote {args.doc}")
    else:
        drive(args)


if __name__ == "__main__":
    main()
