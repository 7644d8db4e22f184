"""Plot a ``throughput.py`` result: pages/s against batch size, with the naive line and the bandwidth bound.

Log2 batch-size axis, log pages/s axis, matplotlib's Agg backend (no display needed):

    python benchmarks/plot_throughput.py benchmarks/results/throughput-h100.json benchmarks/results/throughput-h100.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

LABELS = {"batched_generate": "batched model.generate", "engine": "TransformersEngine"}


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    ok = [e for e in result.get("measurements", []) if e.get("status") == "ok"]
    for path, marker, color in (("batched_generate", "o", "tab:blue"), ("engine", "s", "tab:orange")):
        points = sorted((e["batch_size"], e["pages_per_s"]) for e in ok if e["path"] == path)
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, color=color, label=LABELS[path])
            for x, y in points:
                ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    naive = [e for e in ok if e["path"] == "naive"]
    if naive:
        rate = naive[0]["pages_per_s"]
        note = " (extrapolated)" if naive[0].get("extrapolated") else ""
        ax.axhline(rate, color="grey", linestyle=":", label=f"naive, 1 page per call{note}: {rate:.3f}")
    bound = result.get("bound", {})
    rows = bound.get("by_batch_size", [])
    if rows:
        xs = [r["batch_size"] for r in rows]
        ax.plot(
            xs,
            [r["pages_per_s_bound"] for r in rows],
            linestyle="--",
            color="black",
            label=f"HBM bound at {bound['bandwidth_Bps'] / 1e12:.2f} TB/s (decode only)",
        )
        if all("pages_per_s_bound_measured_bw" in r for r in rows):
            measured = bound["measured_copy_Bps"] / 1e12
            ax.plot(
                xs,
                [r["pages_per_s_bound_measured_bw"] for r in rows],
                linestyle="--",
                color="tab:red",
                alpha=0.6,
                label=f"bound at measured copy bandwidth {measured:.2f} TB/s",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (pages decoded together)")
    ax.set_ylabel("pages / s")
    new_tokens = result.get("config", {}).get("new_tokens")
    ax.set_title(f"DeepSeek-OCR-2 throughput, {new_tokens} tokens per page\n{result.get('device', '')}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    plot(json.loads(args.json.read_text()), args.png)


if __name__ == "__main__":
    main()
