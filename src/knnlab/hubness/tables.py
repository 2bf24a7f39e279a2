"""The hubness experiment's tables as data: its results, the paper's Table 1 and the orderings
that the paper's table shows, checked on a run; plus the aligned text the CLI prints."""

from __future__ import annotations

from typing import Any

from knnlab.results import ExperimentResult

__all__ = ["MAIN_COLUMNS", "PAPER_RESULTS", "add_tables", "format_table", "shape_checks"]

# Liang et al. 2022, Table 1 (StyleGAN2, FFHQ 1024, Inception/VGG features): for comparing shape.
PAPER_RESULTS: list[dict[str, Any]] = [
    {"method": "Hubs(50)", "fid": 21.96, "precision": 0.890, "recall": 0.324},
    {"method": "Truncated(0.7)", "fid": 25.10, "precision": 0.811, "recall": 0.223},
    {"method": "Truncated(0.3)", "fid": None, "precision": 0.892, "recall": 0.015},
    {"method": "Random", "fid": 35.46, "precision": 0.720, "recall": 0.393},
]

#: columns of the main table in the report (rows keep every measured key)
MAIN_COLUMNS = [
    "method",
    "acceptance_rate",
    "fid",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "memorization_rate",
    "class_entropy",
    "top_class_share",
]

# (row key, header, format) of the text table
_TEXT_COLUMNS = [
    ("method", "method", "{}"),
    ("acceptance_rate", "accept", "{:.2%}"),
    ("fid", "FID", "{:.3f}"),
    ("kid", "KID", "{:.4f}"),
    ("precision", "P", "{:.3f}"),
    ("recall", "R", "{:.3f}"),
    ("density", "D", "{:.3f}"),
    ("coverage", "C", "{:.3f}"),
    ("memorization_rate", "memorized", "{:.2%}"),
    ("class_entropy", "class H", "{:.3f}"),
]


def shape_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Does the table have the paper's shape? Orderings that hold in Liang et al. Table 1."""
    by = {r["method"]: r for r in rows}
    hub_rows = [r for r in rows if r["method"].startswith("Hubs(")]
    out: dict[str, Any] = {}
    rnd = by.get("Random")
    t07, t03 = by.get("Truncated(0.7)"), by.get("Truncated(0.3)")
    if hub_rows and rnd:
        best = min(hub_rows, key=lambda r: r["fid"])
        out["best_hubs_fid_below_random"] = bool(best["fid"] < rnd["fid"])
        out["all_hubs_precision_above_random"] = all(
            r["precision"] > rnd["precision"] for r in hub_rows
        )
    if hub_rows and t07:
        out["best_hubs_fid_below_truncated_0.7"] = bool(
            min(r["fid"] for r in hub_rows) < t07["fid"]
        )
        out["some_hubs_recall_above_truncated_0.7"] = any(
            r["recall"] > t07["recall"] for r in hub_rows
        )
    if t07 and t03:
        out["truncation_0.3_recall_collapses"] = bool(t03["recall"] < t07["recall"])
    return out


def add_tables(
    res: ExperimentResult,
    rows: list[dict[str, Any]],
    *,
    features: str,
    pr_k: int,
    dc_k: int,
    training_label: str,
    n_training: int,
    notes: list[str] | None = None,
) -> None:
    """Add the main table (``"main"``), the paper's table (``"paper"``) and the shape checks
    (``"shape_vs_paper"``) to ``res``."""
    columns = [c for c in MAIN_COLUMNS if any(c in r for r in rows)]
    res.add_table(
        "main",
        rows,
        columns=columns,
        labels={"fid": f"FID ({features})", "acceptance_rate": "acceptance"},
        caption=f"FID ({features}), KID, precision/recall (k={pr_k}), density/coverage "
        f"(k={dc_k}), all on {features}; memorization_rate: ratio test d1 < d2/3 against "
        f"{n_training} {training_label}"
        + (
            "; class_entropy: normalised entropy of the digits the classifier predicts (1 = all "
            "ten equally often), top_class_share: share of the most frequent digit"
            if "class_entropy" in columns
            else ""
        ),
        notes=notes,
    )
    res.add_table(
        "paper",
        PAPER_RESULTS,
        columns=["method", "fid", "precision", "recall"],
        caption="Liang et al. 2022, Table 1 (StyleGAN2 on FFHQ, Inception/VGG features): "
        "compare the shape (orderings), not the values",
    )
    res.add_table(
        "shape_vs_paper",
        [{"check": k, "holds": v} for k, v in shape_checks(rows).items()],
        columns=["check", "holds"],
        caption="Orderings of the paper's table, checked on this run",
    )


def format_table(res: ExperimentResult) -> str:
    """The main table as aligned text (the CLI prints it)."""
    rows = res.table("main").rows
    header = [c[1] for c in _TEXT_COLUMNS]
    lines = [
        [fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in _TEXT_COLUMNS]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt_line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    p = res.protocol
    title = (
        f"Hubness experiment ({p['generator']}, {p['space'].upper()} space, k={p['k']}, "
        f"pool {p['pool_size']}, n={rows[0]['n']} per row); FID/KID/P/R/D/C on {p['features']}"
    )
    return "\n".join([title, fmt_line.format(*header)] + [fmt_line.format(*line) for line in lines])
