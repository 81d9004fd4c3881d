"""Sweep outputs: markdown tables, the accuracy-vs-depth plot, and the docs section.

`docs/DEPTH_BENCHMARK.md` is hand-written prose plus one generated section per preset between
`<!-- BEGIN results:<preset> -->` and `<!-- END results:<preset> -->`; a sweep replaces only
its own preset's section, so CPU and H200 results live side by side. A fixed-length sweep
(results meta `protocol: fixed`) has its own section, `<preset>_fixed`.
"""

from __future__ import annotations

import os
import re

from rcfam_jax.research.tasks import cliffs

TASK_TITLES = {
  "frjt": "Forward-Referencing Jumps (max jump 4)",
  "frjt16": "Forward-Referencing Jumps (max jump 16)",
  "maze": "Withheld Maze 4x4",
  "perm": "S3 composition (never synchronises)",
  "last_write": "Last-Write control (associative)",
}


def _label(r):
  return r.get("label", r["task"]["name"])


def _runs_by_task(results):
  out = {}
  for name, r in results["runs"].items():
    out.setdefault(_label(r), []).append((name, r))
  return out


def _title(task, r):
  """The task's table title; under the fixed protocol with its row length L."""
  length = r["task"].get("fixed_len")
  title = TASK_TITLES.get(task, task)
  return title if length is None else f"{title}, fixed length L={length}"


def _fixed(meta) -> bool:
  return meta.get("protocol", "variable") != "variable"


def _protocol(meta) -> str:
  return (
    ", fixed-length protocol (every row, at every depth, is L tokens long)" if _fixed(meta) else ""
  )


def _model_label(r):
  m = r["model"]
  pos = m.get("pos_encoding", "rope")
  return f"{m['kind']} L={m['layers']}" + ("" if pos == "rope" else f" (positions: {pos})")


def tables(results) -> str:
  """Per task: per-step and last-step accuracy by depth (percent), params and cliff depth."""
  lines = []
  for task, runs in _runs_by_task(results).items():
    depths = sorted({int(d) for _, r in runs for d in r["eval"]})
    train_max = runs[0][1]["run"]["train_max_depth"]
    head = " | ".join(f"{d}{'*' if d <= train_max else ''}" for d in depths)
    for metric, title in (("acc", "per-step accuracy"), ("final_acc", "last-step accuracy")):
      last = metric == "final_acc"
      lines += [
        f"**{_title(task, runs[0][1])}: {title} (%) by depth** "
        f"(* = inside the training range 1..{train_max})",
        "",
        f"| model | params | steps x batch | {head} |" + (" cliff |" if last else ""),
        "|---|---|---|" + "---|" * (len(depths) + last),
      ]
      for _, r in runs:
        cells = " | ".join(
          f"{100 * r['eval'][str(d)][metric]:.1f}" if str(d) in r["eval"] else "" for d in depths
        )
        cliff = r["cliff_depth"] if r["cliff_depth"] is not None else f">{depths[-1]}"
        budget = f"{r['run']['steps']}x{r['run']['batch']}"
        lines.append(
          f"| {_model_label(r)} | {r['params']:,} | {budget} | {cells} |"
          + (f" {cliff} |" if last else "")
        )
      lines.append("")
  thr = cliffs.threshold(results)
  lines.append(
    f"cliff = the smallest evaluated depth whose last-step accuracy is below {100 * thr:.0f}%."
  )
  return "\n".join(lines) + "\n"


def plot(results, path: str) -> None:
  """Per task, per-step and last-step accuracy against depth for every model (PNG)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  by_task = _runs_by_task(results)
  fig, axes = plt.subplots(2, len(by_task), figsize=(5 * len(by_task), 7), squeeze=False)
  for j, (task, runs) in enumerate(by_task.items()):
    for i, (metric, title) in enumerate((("acc", "per-step"), ("final_acc", "last-step"))):
      ax = axes[i][j]
      for _, r in runs:
        ds = sorted(int(d) for d in r["eval"])
        ax.plot(ds, [r["eval"][str(d)][metric] for d in ds], marker="o", label=_model_label(r))
      ax.axvline(runs[0][1]["run"]["train_max_depth"], color="grey", ls="--", lw=1)
      ax.set_xscale("log", base=2)
      ax.set_ylim(0, 1.02)
      ax.set_xlabel("depth (executed jumps / moves / writes)")
      ax.set_ylabel(f"{title} accuracy")
      ax.set_title(_title(task, runs[0][1]), fontsize=9)
      ax.legend(fontsize=7)
  meta = results["meta"]
  fixed = ", fixed length" if _fixed(meta) else ""
  fig.suptitle(f"Accuracy vs depth ({meta['preset']}{fixed}; {meta['device']})")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def section(results, plot_name: str | None) -> str:
  m = results["meta"]
  parts = [
    f"Measured {m['date']} on {m['device']} (jax {m['jax']}), preset `{m['preset']}`"
    f"{_protocol(m)}, {m['total_s']:.0f} s in total"
    + (f" over {m['parts']} invocations (--resume)." if m.get("parts", 1) > 1 else "."),
    "",
    *(f"Command: `{c}`" for c in m.get("commands", [m["command"]])),
    "",
    *([m["note"], ""] if m.get("note") else []),
    tables(results),
  ]
  layers = cliffs.table(results)
  if layers:
    parts += [
      "Cliff against layers (RoPE runs; the crossing interpolated in log2(depth); fits by "
      "least squares in log-log):",
      "",
      layers,
    ]
  if plot_name:
    parts += [f"![accuracy vs depth]({plot_name})", ""]
  return "\n".join(parts)


def update_docs(path: str, preset: str, body: str) -> None:
  """Replaces (or appends) the generated section for `preset` in the docs file."""
  begin, end = f"<!-- BEGIN results:{preset} -->", f"<!-- END results:{preset} -->"
  block = f"{begin}\n{body.rstrip()}\n{end}"
  text = open(path).read() if os.path.exists(path) else "# Depth benchmark\n"
  pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
  text = (
    pattern.sub(lambda _: block, text)
    if pattern.search(text)
    else (text.rstrip() + "\n\n" + block + "\n")
  )
  with open(path, "w") as f:
    f.write(text)
