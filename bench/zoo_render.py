"""docs/zoo.md from bench/zoo.py's cache: method, totals per target, one row per model, failures quoted."""

from __future__ import annotations

from pathlib import Path

TARGETS = ("onnx-cpu", "onnx-int8", "litert")


def describe_options(opt: dict) -> str:
    parts = [f"calibration: {opt['method']}"]
    if opt.get("per_channel") is False:
        parts.append("per_channel: false")
    if opt.get("keep_float"):
        parts.append(f"keep_float: [{', '.join(opt['keep_float'])}]")
    return ", ".join(parts)


def _err(x: float | None) -> str:
    return "" if x is None else f"{x:.1e}"


def _gate(row: dict | None) -> str:
    """A target's cell: pass with its worst error, FAIL, or blank when not run."""
    if not row:
        return "not run"
    gate = row.get("gate") or {}
    if row.get("ok"):
        noise = gate.get("noise")
        within = (f" (within {noise['e_export'] / max(noise['e_keras'], 1e-30):.1f}x Keras's own fp32 error)"
                  if noise else "")
        return f"pass {_err(gate.get('max_abs_error'))}".strip() + within + (
            f" (with {row['passed_with']})" if row.get("passed_with") else "")
    if gate.get("max_abs_error") is not None and not gate.get("ok", True):
        return f"**FAIL** {_err(gate.get('max_abs_error'))}"
    return "**FAIL**"


def _export_time(r: dict) -> str:
    row = r.get("targets", {}).get("onnx-cpu") or {}
    s, bare = row.get("seconds") or {}, r.get("bare_export_s")
    if not row.get("ok") or not bare:
        return ""
    total, gate = s.get("total", row.get("wall_s", 0)), s.get("gate", 0)
    return f"{total:.1f} ({gate:.1f}) / {bare:.1f} = {total / bare:.2f}x ({(total - gate) / bare:.2f}x)"


def _latency(r: dict) -> str:
    ort_ms, fn_ms = (r.get("targets", {}).get("onnx-cpu") or {}).get("ort_ms"), r.get("tf_function_ms")
    return f"{ort_ms:.1f} / {fn_ms:.1f} ({fn_ms / ort_ms:.1f}x)" if ort_ms and fn_ms else ""


def _int8(r: dict) -> tuple[str, str]:
    row = r.get("targets", {}).get("onnx-int8") or {}
    speed = f"{row['speedup']:.2f}x" if row.get("speedup") else ""
    if row.get("top1_all") is None:
        return speed, ""
    clear = f"; {row['top1_clear']:.0%} of {row['clear']} clear" if row.get("top1_clear") is not None else ""
    ties = f"; {row['int8_ties']} int8 ties" if row.get("int8_ties") else ""
    return speed, f"{row['top1_all']:.0%} of 64{clear}{ties}"


def _sensitivity(r: dict) -> str:
    db = r.get("sensitivity_db")
    return "" if db is None else f"{db:.1f} dB"


def _located(row: dict) -> str:
    located = (row.get("gate") or {}).get("located") or {}
    worst = located.get("worst") or {}
    if not worst:
        return ""
    grows = ", ".join(f"{g['node']} (-{g.get('drop_db', 0):.1f} dB)" for g in located.get("grows") or [])
    return (f"; worst node {worst['node']} ({worst.get('sqnr_db', 0):.1f} dB)"
            + (f", error grows at {grows}" if grows else ""))


def _attempts(row: dict) -> str:
    tried = row.get("attempts") or []
    if not tried:
        return f"; other options {row['retries']}" if row.get("retries") else ""
    return "; still failing with " + "; ".join(
        f"{describe_options(a)} ({a['error_vs_range']:.2f} of the range)" if a.get("error_vs_range") is not None
        else describe_options(a) for a in tried)


def _in_keras(row: dict) -> str:
    """A failed int8 export against int8 simulated in Keras (bench/zoo.py ``int8_in_keras``)."""
    sim = row.get("in_keras")
    if not sim:
        return ""
    figures = " and ".join(
        f"{sim[m]['error_vs_range']:.2f} of the output range with {m}"
        + (f" (top-1 {sim[m]['top1_agreement']:.0%} of {sim[m]['top1_decisive']})" if sim[m].get("top1_decisive") else "")
        for m in ("minmax", "percentile") if m in sim)
    if sim.get("ok"):
        return f"; int8 simulated in Keras passes the same gate ({figures}): the export loses more than int8 does"
    return (f"; int8 simulated in Keras, with no export, fails the same gate too ({figures}): the loss is int8 "
            "rounding on these random weights, outside netspec")


# Two int8 exports that both fail are "no better" than each other within this share of the output range
# (MobileNetV2: netspec's best 0.7515, onnxruntime's own 0.7511 per tensor).
PLAIN_TOLERANCE = 0.02


def best_ratio(row: dict) -> float | None:
    """netspec's best int8 export: the smallest error (of the output range) over the first try and the retries."""
    tried = [(row.get("gate") or {}).get("error_vs_range")] + [a.get("error_vs_range") for a in row.get("attempts") or []]
    tried = [x for x in tried if x is not None]
    return min(tried) if tried else None


def plain_verdict(row: dict) -> str | None:
    """For a failed int8 export, against onnxruntime's own int8 of Keras's own export (bench/zoo_int8.py
    ``int8_plain_ort``): "outside" (it fails the same gate too, and netspec's best is no worse than its
    best, within :data:`PLAIN_TOLERANCE`), "netspec" (it passes, or does better), or None (not compared)."""
    plain = row.get("plain_ort") or {}
    ran = [v["error_vs_range"] for k, v in plain.items() if isinstance(v, dict) and v.get("error_vs_range") is not None]
    if row.get("ok") or not ran:
        return None
    mine = best_ratio(row)
    if plain.get("ok") or (mine is not None and mine > min(ran) + PLAIN_TOLERANCE):
        return "netspec"
    return "outside"


# What onnxruntime's own int8 started from (zoo_int8.int8_plain_ort's ``source``)
PLAIN_SOURCES = {
    "keras": "Keras's own `model.export`",
    "netspec": ("netspec's float32 export (its gate proved it equal to Keras; Keras's own `model.export` of this "
                "model goes over the memory cap)"),
}


def _plain(row: dict) -> str:
    verdict = plain_verdict(row)
    plain = row.get("plain_ort") or {}
    start = plain.get("source", "keras")
    source = PLAIN_SOURCES[start]
    if verdict is None:
        why = plain.get("unavailable") or plain.get("stopped")
        return f"; onnxruntime's own int8 of {source} could not be compared ({why})" if why else ""
    ran = {k: v for k, v in plain.items() if isinstance(v, dict) and v.get("error_vs_range") is not None}
    figures = ", ".join(f"{k} {v['error_vs_range']:.2f}" for k, v in ran.items()) + " of the output range"
    mine = best_ratio(row)
    if mine is not None:
        figures += f"; netspec's best {mine:.2f}"
    figures += "".join(f"; {k} not run: {v['skipped']}" for k, v in plain.items()
                       if isinstance(v, dict) and v.get("skipped"))
    if plain.get("bound"):
        figures += f"; {plain['bound']}"
    if verdict == "outside":
        code = "no netspec code" if start == "keras" else "no netspec quantization code"
        return (f"; onnxruntime's own `quantize_static` of {source}, with {code}, fails "
                f"the same gate too ({figures}): int8 with "
                "onnxruntime loses this much on these random weights, outside netspec")
    return (f"; onnxruntime's own `quantize_static` of {source} does better ({figures}): "
            "netspec's int8 export loses more than it should")


def _from_netspec(models: dict, target: str, names: list[str]) -> str:
    """Which of ``names`` onnxruntime's own int8 started from netspec's fp32 export (Keras's over the cap)."""
    mine = [m for m in names if (models[m]["targets"][target].get("plain_ort") or {}).get("source") == "netspec"]
    return (f" (for {', '.join(mine)}, of netspec's float32 export, which its gate proved equal to Keras: Keras's own "
            "export goes over the memory cap)") if mine else ""


def _median(xs: list[float]) -> float:
    import statistics

    return statistics.median(xs) if xs else float("nan")


def render(cache: dict, doc: Path) -> None:
    """Write the Markdown report from the cache: method, totals, one row per model, failures."""
    models = cache.get("models", {})
    everything = cache.get("all_models") or sorted(models)
    env = cache.get("environment", {})
    lines = [
        "# The keras.applications zoo through netspec",
        "",
        "Generated by `bench/zoo.py` (`make bench-zoo`) from its cache `bench/zoo-results.json`; do not edit by",
        "hand (`python bench/zoo.py --render` rewrites it from the cache). Each model, in its own process:",
        "`netspec import --keras-app NAME` (ConvNeXt with a plugin registering its `LayerScale`), the spec built",
        "with seeded random weights whose BatchNormalization statistics are set from generated images (so",
        "outputs vary) and whose softmax head is scaled so its logits have standard deviation 4 on generated",
        "images (an untrained 1000-way softmax is uniform to ~1e-3, below int8's output grid of 1/255: every",
        "int8 output would tie), then `netspec.export.export` to each target and a bare Keras",
        '`model.export(path, format="onnx")` of the same model. All inputs are generated (no labelled data).',
        "",
        "- **Export s**: netspec's `onnx-cpu` export (convert + gate + write; the gate's seconds in brackets) /",
        "  the bare `model.export` = the ratio (and the ratio without the gate, in brackets).",
        "- **gate**: the target's verification gate and its worst absolute error against Keras (every output,",
        "  batches 1 and 8, or smaller ones the memory budget allows: listed under Gate batches). An fp32",
        "  export over the absolute bound (1e-4 of the output range) is judged again against Keras's own",
        "  float32 error, measured with the model in float64: it passes within 4x of it, and the cell says how",
        "  far it is in multiples of Keras's error. An `onnx-int8` export that fails its gate is retried as a user acting on the",
        "  report would: calibration `percentile`, then `entropy`, then `per_channel: false` (first, where onnxruntime's own",
        "  int8 below did better per tensor), then `keep_float:` of the nodes the report",
        "  names (its worst node and those where the error grows), up to 5 exports; the cell says what passed",
        "  (`pass (with ...)`), and Failures lists the located nodes and every option tried.",
        "- **ORT / tf.function ms**: median latency at batch 1 of onnxruntime on the fp32 export, and of a",
        "  compiled `tf.function` of the Keras model (their ratio in brackets).",
        "- **fp32 sensitivity**: the float32 Keras model's output SQNR for Gaussian input noise at 40 dB SQNR",
        "  (about int8's rounding of an input): how much these random weights amplify a perturbation. int8",
        "  adds such a perturbation at every layer; a model that turns 40 dB into single digits (chaotic",
        "  random weights) fails any int8 bound for a reason in its weights, not in the export.",
        "- **int8 in Keras**: for an `onnx-int8` export whose calibration retries fail too, int8 arithmetic is simulated in",
        "  Keras with no export (kernels rounded to int8 per output channel; inputs and every layer output a",
        "  runtime does not fuse rounded to uint8 at the min-max, then the percentile, of generated calibration",
        "  images) and judged by the same gate rule. When that fails too, the loss is int8's on these weights.",
        "- **onnxruntime's own int8**: for an `onnx-int8` export that fails its gate, Keras's own `model.export`",
        "  of the same model goes through onnxruntime's documented steps with no netspec code (`quant_pre_process`,",
        "  `quantize_static`: QDQ, uint8 activations, int8 weights; min-max per channel and per tensor, and",
        "  percentile) on the same calibration samples, judged by the same gate on the same batches (every",
        "  proven input size). When every one fails too and netspec's best export is no worse than onnxruntime's",
        "  best (within 0.02 of the output range), the failure is int8's with onnxruntime on these weights:",
        "  outside netspec. Where Keras's own export goes over the memory cap, onnxruntime's steps start from",
        "  netspec's float32 export instead, which its gate proved equal to Keras (and which is checked again,",
        "  within 1e-3 of the output range, before it is used); the report says so.",
        "- **int8**: onnxruntime fp32 / int8 latency at batch 1 (the speed-up), and top-1 agreement of the",
        "  int8 export with the fp32 export on 64 generated inputs (and on those whose fp32 top-1 is clear:",
        "  margin over 10% of the output range; on random weights most top-1s are near-ties).",
        "",
    ]
    if env:
        v = env.get("versions", {})
        lines += ["Environment: " + ", ".join(f"{k} {x}" for k, x in v.items())
                  + f"; Python {env.get('python')}, {env.get('cpus')} CPUs ({env.get('machine')}).", ""]

    lines += ["## Totals", ""]
    run = [m for m in everything if m in models]
    lines.append(f"- {len(everything)} models in keras.applications; {len(run)} run"
                 + (f" (not run yet: {', '.join(m for m in everything if m not in models)})" if len(run) < len(everything)
                    else "") + ".")
    for t in TARGETS:
        rows = [models[m]["targets"][t] for m in run if t in models[m].get("targets", {})]
        if rows:
            helped = [m for m in run if (models[m].get("targets", {}).get(t) or {}).get("passed_with")]
            failed = [m for m in run if not (models[m].get("targets", {}).get(t) or {"ok": True}).get("ok")]
            outside = [m for m in failed if plain_verdict(models[m]["targets"][t]) == "outside"]
            ours = [m for m in failed if plain_verdict(models[m]["targets"][t]) == "netspec"]
            inherent = [m for m in failed if m not in outside + ours
                        and (models[m]["targets"][t].get("in_keras") or {"ok": True}).get("ok") is False]
            lines.append(f"- `{t}`: {sum(bool(r.get('ok')) for r in rows)} of {len(rows)} pass the gate"
                         + (f" ({len(run) - len(rows)} not run yet)" if len(rows) < len(run) else "")
                         + (f" ({len(helped)} with options their failed report named: "
                            + "; ".join(f"{m}: {models[m]['targets'][t]['passed_with']}" for m in helped) + ")"
                            if helped else "") + "."
                         + (f" {len(outside)} of the failures are shared by onnxruntime's own int8 of Keras's own "
                            f"export, no better than netspec's (outside netspec): {', '.join(outside)}"
                            + _from_netspec(models, t, outside) + "." if outside else "")
                         + (f" {len(ours)} of the failures onnxruntime's own int8 of Keras's export does better on "
                            f"(netspec's to fix): {', '.join(ours)}." if ours else "")
                         + (f" {len(inherent)} of the failures fail the same gate with int8 simulated in Keras, with "
                            f"no export (outside netspec): {', '.join(inherent)}." if inherent else ""))
    ratios = [(r["targets"]["onnx-cpu"]["seconds"], r["bare_export_s"]) for r in (models[m] for m in run)
              if r.get("bare_export_s") and (r.get("targets", {}).get("onnx-cpu") or {}).get("ok")]
    if ratios:
        lines.append(f"- export time against the bare `model.export`: median {_median([s['total'] / b for s, b in ratios]):.2f}x, "
                     f"without the gate {_median([(s['total'] - s['gate']) / b for s, b in ratios]):.2f}x.")
    speed = [models[m]["targets"]["onnx-int8"]["speedup"] for m in run
             if (models[m].get("targets", {}).get("onnx-int8") or {}).get("speedup")]
    if speed:
        lines.append(f"- int8 speed-up over fp32 (onnxruntime, batch 1): median {_median(speed):.2f}x.")
    lines.append("")

    lines += ["## Per model", "",
              "| Model | Params | Export s (gate) / bare = ratio | `onnx-cpu` | ORT / tf.function ms | `onnx-int8` "
              "| int8 speed-up | int8 top-1 vs fp32 | fp32 sensitivity | `litert` |",
              "|---|--:|---|---|---|---|--:|---|--:|---|"]
    for m in run:
        r = models[m]
        t = r.get("targets", {})
        speed_cell, top1 = _int8(r)
        params = f"{r['params']:,}" if r.get("params") else ""
        lines.append(f"| {m} | {params} | {_export_time(r)} | {_gate(t.get('onnx-cpu'))} | {_latency(r)} | "
                     f"{_gate(t.get('onnx-int8'))} | {speed_cell} | {top1} | {_sensitivity(r)} | {_gate(t.get('litert'))} |")
    lines.append("")

    failures = []
    for m in run:
        r = models[m]
        if r.get("error") and not r.get("targets"):
            failures.append(f"- **{m}**: {r['error']}")
        for t, row in sorted(r.get("targets", {}).items(), key=lambda kv: TARGETS.index(kv[0])):
            if not row.get("ok"):
                chaos = (f"; the float32 model itself turns 40 dB input noise into {r['sensitivity_db']:.1f} dB at its "
                         "output (random weights)" if t == "onnx-int8" and r.get("sensitivity_db") is not None else "")
                # int8 simulated in Keras is an estimate (its rounding points are not onnxruntime's): shown only
                # where onnxruntime's own int8 of Keras's export gave no verdict
                sim = _in_keras(row) if plain_verdict(row) is None else ""
                # the bench's own stop (--timeout, --memory-gb) after the row was made: what it cut short
                cut = (f"; the bench stopped the model's run after these ({r['error'].removeprefix('stopped: ')})"
                       if str(r.get("error", "")).startswith("stopped") and row.get("kind") != "stopped" else "")
                failures.append(f"- **{m}** `{t}` ({row.get('kind', '?')}): \"{row.get('error', '?')}\""
                                + _located(row) + _attempts(row) + cut + chaos + _plain(row) + sim)
        if r.get("bare_export_error"):
            failures.append(f"- **{m}** bare `model.export` (outside netspec): {r['bare_export_error']}")
    lines += ["## Failures", "", *(failures or ["None."]), ""]
    limited = [f"- **{m}** `{t}`: {row['gate']['batch_limit']}" for m in run
               for t, row in sorted(models[m].get("targets", {}).items(), key=lambda kv: TARGETS.index(kv[0]))
               if (row.get("gate") or {}).get("batch_limit")]
    if limited:
        lines += ["## Gate batches", "", "Gate batches the export chose under the memory budget (not 1 and 8):",
                  "", *limited, ""]
    doc.write_text("\n".join(lines))


