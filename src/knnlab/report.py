"""A self-contained HTML report (tables, images and figures inlined, no external assets) plus the
same results as data in ``results.json``.

Example::

    report = Report("knnlab demo")
    sec = report.section("Denoising", "Set12, sigma = 25")
    sec.table([{"method": "BM3D", "psnr": 30.1}], caption="PSNR (dB)")
    sec.images([noisy, denoised], captions=["noisy", "N3Net"])   # (C, H, W) or (H, W) in [0, 1]
    sec.figure(fig)                                               # a matplotlib Figure
    report.results["denoise"] = {...}
    report.write(out_dir)                                         # report.html + results.json
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from knnlab.io_utils import atomic_write_json, atomic_write_text, json_safe

__all__ = ["Report", "Section", "image_to_png_bytes"]


def image_to_png_bytes(image: Any) -> bytes:
    """Encode an image in [0, 1] as PNG. Accepts ``(H, W)``, ``(C, H, W)`` (C = 1 or 3) tensors or arrays
    and ``(H, W, C)`` arrays."""
    from PIL import Image

    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    u8 = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value: Any) -> str:
    if value is None:  # not measured, or NaN written as JSON null
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3f}"
    return html.escape(str(value))


@dataclass
class Section:
    title: str
    intro: str = ""
    parts: list[str] = field(default_factory=list)

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        caption: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """A table from a list of dicts; ``columns`` picks and orders the keys, ``labels`` maps
        keys to headers (default: the key)."""
        if not rows:
            return
        cols = list(columns) if columns else list(rows[0].keys())
        names = labels or {}
        head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows
        )
        # the caption stands above the scrolling box, so a long one wraps at the page width
        cap = f'<p class="tcap">{html.escape(caption)}</p>' if caption else ""
        self.parts.append(
            f'{cap}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )

    def images(
        self, images: Sequence[Any], captions: Sequence[str] | None = None, width: int = 256
    ) -> None:
        """A row of images side by side, each in [0, 1]."""
        captions = list(captions) if captions else [""] * len(images)
        cells = "".join(
            f'<figure><img src="{_data_uri(image_to_png_bytes(im))}" width="{width}" '
            f'style="image-rendering:pixelated"><figcaption>{html.escape(c)}</figcaption></figure>'
            for im, c in zip(images, captions)
        )
        self.parts.append(f'<div class="row">{cells}</div>')

    def figure(self, fig: Any, caption: str = "", dpi: int = 110) -> None:
        """Inline a matplotlib figure as PNG (the figure is closed afterwards)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure><img src="{_data_uri(buf.getvalue())}">{cap}</figure>')

    def render(self) -> str:
        intro = f"<p>{html.escape(self.intro)}</p>" if self.intro else ""
        return f"<section><h2>{html.escape(self.title)}</h2>{intro}{''.join(self.parts)}</section>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}.scroll{max-width:100%;overflow-x:auto;margin:0 0 1em 0}
img{max-width:100%;height:auto}.tcap{font-weight:600;margin:1em 0 4px 0}
td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:12px}figure{margin:8px 0}figcaption{font-size:90%;color:#555}
footer{margin-top:3em;color:#777;font-size:85%}.skipped{color:#a60;font-style:italic}
"""


class Report:
    """Sections of text, tables and pictures, written as one HTML file and a JSON of results."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.sections: list[Section] = []
        self.results: dict[str, Any] = {}

    def section(self, title: str, intro: str = "") -> Section:
        sec = Section(title, intro)
        self.sections.append(sec)
        return sec

    def add_experiment(self, source: Any) -> Section:
        """A section rendered from an experiment: an output folder of
        :func:`knnlab.results.write_experiment`, or an :class:`~knnlab.results.ExperimentResult`
        (its figures then come from memory). Tables, their notes, figures and the protocol."""
        from knnlab.results import RESULTS_NAME, ExperimentResult, read_experiment

        folder: Path | None = None
        if isinstance(source, ExperimentResult):
            res = source
        else:
            folder = Path(source)
            res = read_experiment(folder)
        sec = self.section(res.title, res.summary)
        if res.skipped is not None:
            sec.parts.append(f'<p class="skipped">skipped: {html.escape(res.skipped)}</p>')
        for t in res.tables:
            sec.table(t.rows, t.columns, caption=t.caption, labels=t.labels)
            for note in t.notes:
                sec.text(note)
        for f in res.figures:
            png = res.files.get(f.file)
            if png is None and folder is not None and (folder / f.file).is_file():
                png = (folder / f.file).read_bytes()
            if png is not None:
                cap = f"<figcaption>{html.escape(f.caption)}</figcaption>" if f.caption else ""
                sec.parts.append(f'<figure><img src="{_data_uri(png)}">{cap}</figure>')
        for label, items in (
            ("Protocol", res.protocol),
            ("Timings (s)", res.timings),
            ("Machine", res.machine if res.skipped is None else {}),
        ):
            if items:
                lis = "".join(
                    f"<li><b>{html.escape(str(k))}</b>: {_fmt(v)}</li>" for k, v in items.items()
                )
                sec.parts.append(f"<details><summary>{label}</summary><ul>{lis}</ul></details>")
        entry = res.to_dict()
        if folder is not None:  # the files stay on disk; keep the list results.json gives
            listed = json.loads((folder / RESULTS_NAME).read_text()).get("files", [])
            entry["files"] = sorted(set(entry["files"]) | set(listed))
        self.results[res.experiment] = entry
        return sec

    def to_html(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = "".join(s.render() for s in self.sections)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>{body}"
            f"<footer>knnlab report, {stamp}. Raw numbers: results.json.</footer></body></html>"
        )

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.html`` and ``results.json`` into ``out_dir`` atomically."""
        out = Path(out_dir)
        json.dumps(json_safe(self.results), allow_nan=False)  # fail before writing anything
        atomic_write_json(out / "results.json", self.results)
        atomic_write_text(out / "report.html", self.to_html())
        return out / "report.html", out / "results.json"
