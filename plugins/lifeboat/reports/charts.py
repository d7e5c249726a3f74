"""Report charts (matplotlib, Agg backend, PNG bytes). Each function returns None when there is
nothing to draw, so a report never shows an empty frame as if it were data."""

from __future__ import annotations

import io
from datetime import datetime


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.fonttype": "none"})
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=140, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def rto_rpo(report: dict) -> bytes | None:
    """Measured RTO and RPO per drill over the last 12 months, against each datastore's objective."""
    series = [ds for ds in report["datastores"] if ds["history"]]
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(series), 2, figsize=(7.2, 1.9 * len(series)), squeeze=False)
    for row, ds in zip(axes, series, strict=True):
        for ax, key, label in ((row[0], "rto", "RTO"), (row[1], "rpo", "RPO")):
            pts = [(datetime.fromisoformat(h["started_at"]), h[f"{key}_seconds"] / 60, h[f"{key}_ok"])
                   for h in ds["history"] if h[f"{key}_seconds"] is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#4a7bb7", lw=1, zorder=1)
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=["#2e8540" if p[2] else "#c0392b" for p in pts],
                       s=18, zorder=2)
            ax.axhline(ds["objectives"][f"{key}_seconds"] / 60, color="#888", ls="--", lw=1)
            ax.set_title(f"{ds['name']}: {label} (min) vs objective", fontsize=8)
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    return _png(fig)


def verification(report: dict) -> bytes | None:
    rows = [ds for ds in report["datastores"] if ds["verification"]["total"]]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.4 * len(rows)))
    names = [ds["name"] for ds in rows]
    passed = [ds["verification"]["passed"] for ds in rows]
    failed = [ds["verification"]["failed"] for ds in rows]
    ax.barh(names, passed, height=0.5, color="#2e8540", label="passed")
    ax.barh(names, failed, height=0.5, left=passed, color="#c0392b", label="failed")
    for i, ds in enumerate(rows):
        ax.text(passed[i] + failed[i], i, f" {ds['verification']['pass_rate']}%", va="center", fontsize=7)
    ax.set_xlabel("verifications in the period")
    ax.margins(x=0.12)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.35), ncol=2, fontsize=7, frameon=False)
    return _png(fig)


def freshness(report: dict) -> bytes | None:
    rows = [(f"{ds['name']} {f['series']}", f) for ds in report["datastores"] for f in ds["freshness"]]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.3 * len(rows)))
    ratios = [(f["age_seconds"] / f["limit_seconds"]) if f["age_seconds"] is not None else 2.0 for _, f in rows]
    ax.barh([r[0] for r in rows], ratios, height=0.5, color=["#c0392b" if r > 1 else "#2e8540" for r in ratios])
    ax.axvline(1.0, color="#888", ls="--", lw=1)
    ax.set_xlabel("newest backup age / stale limit (2 schedule intervals); > 1 is stale")
    return _png(fig)


def incidents(report: dict) -> bytes | None:
    rows = report["incidents"]["open"]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.3 * len(rows)))
    colours = {"critical": "#8e1b1b", "high": "#c0392b", "medium": "#d68910", "low": "#7f8c8d"}
    ax.barh([r["key"] for r in rows], [r["age_seconds"] / 3600 for r in rows],
            color=[colours.get(r["severity"], "#888") for r in rows])
    ax.set_xlabel("age of open incidents (hours)")
    return _png(fig)


def chaos(report: dict) -> bytes | None:
    rows = [(e["experiment"], e["score"]) for e in report.get("chaos", {}).get("experiments", [])
            if e["score"] is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.3 * len(rows)))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color="#4a7bb7")
    ax.set_xlim(0, 100)
    ax.set_xlabel("resilience score (sum of weight x probe success / sum of weights), mean of the period's runs")
    return _png(fig)


ALL = {"rto_rpo": rto_rpo, "verification": verification, "freshness": freshness, "incidents": incidents,
       "chaos": chaos}
