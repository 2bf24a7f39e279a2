import io
import json
import re

import numpy as np
import torch
from PIL import Image

from knnlab.report import Report, image_to_png_bytes


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_image_to_png_bytes_layouts_and_rounding():
    chw = torch.tensor([[[0.0, 0.5], [1.0, 2.0]]])  # (1, 2, 2), 2.0 is clipped
    assert _decode(image_to_png_bytes(chw)).tolist() == [[0, 128], [255, 255]]
    rgb = np.zeros((3, 4, 5))
    rgb[1] = 1.0
    out = _decode(image_to_png_bytes(rgb))
    assert out.shape == (4, 5, 3)
    assert (out[..., 1] == 255).all() and (out[..., 0] == 0).all()
    hwc = np.ones((4, 5, 3)) * 0.2
    assert _decode(image_to_png_bytes(hwc)).shape == (4, 5, 3)


def test_report_is_self_contained_and_writes_json(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = Report("t <title>")
    sec = rep.section("Tables", "intro & more")
    sec.table([{"method": "a", "psnr": 30.123456}, {"method": "b<", "psnr": 1e-5}], caption="cap")
    sec.images([torch.rand(1, 8, 8)], captions=["noisy"])
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    sec.figure(fig, caption="fig")
    rep.results["x"] = {"psnr": np.float64(30.5)}
    html_path, json_path = rep.write(tmp_path / "out")
    text = html_path.read_text()
    # no external assets: every src is an inline data URI
    srcs = re.findall(r'src="([^"]+)"', text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in text and "<script" not in text
    assert "30.123" in text and "b&lt;" in text and "intro &amp; more" in text
    assert json.loads(json_path.read_text()) == {"x": {"psnr": 30.5}}


def test_missing_values_render_as_a_dash_and_skipped_experiments_as_one_line(tmp_path):
    from knnlab.results import ExperimentResult, read_experiment, write_experiment

    res = ExperimentResult("t", "T")
    res.add_table("x", [{"method": "a", "fid": None}, {"method": "b", "fid": float("nan")}])
    write_experiment(tmp_path / "t", res)
    rep = Report("r")
    rep.add_experiment(tmp_path / "t")
    text = rep.to_html()
    assert text.count("<td>–</td>") == 2 and "None" not in text and "nan" not in text
    skipped = ExperimentResult.skip("s", "Skipped one", "data set MNIST <missing>")
    write_experiment(tmp_path / "s", skipped)
    assert read_experiment(tmp_path / "s").skipped == "data set MNIST <missing>"
    rep = Report("r")
    rep.add_experiment(tmp_path / "s")
    assert '<p class="skipped">skipped: data set MNIST &lt;missing&gt;</p>' in rep.to_html()
    assert rep.results["s"]["skipped"] == "data set MNIST <missing>"


def test_timings_and_machine_are_listed(tmp_path):
    from knnlab.results import ExperimentResult

    res = ExperimentResult("t", "T")
    res.protocol["sigma"] = 25
    res.timings["train"] = 12.5
    rep = Report("r")
    rep.add_experiment(res)
    text = rep.to_html()
    assert "<summary>Protocol</summary><ul><li><b>sigma</b>: 25</li>" in text
    assert "<summary>Timings (s)</summary><ul><li><b>train</b>: 12.500</li>" in text
    assert "<summary>Machine</summary>" in text and f"<b>torch</b>: {torch.__version__}" in text


def test_wide_tables_and_figures_stay_within_the_page() -> None:
    # a wide table scrolls inside the page and figures shrink to it (they overflowed in Chromium)
    from knnlab.report import Report

    r = Report("t")
    r.section("s").table([{f"column {i}": i for i in range(40)}])
    page = r.to_html()
    css = page[page.index("<style>") : page.index("</style>")]
    box = css.split(".scroll{", 1)[1].split("}")[0]
    assert "overflow-x:auto" in box and "max-width:100%" in box
    assert '<div class="scroll"><table>' in page  # the table scrolls inside its box
    assert "img{max-width:100%" in css


def test_pyproject_licence_is_an_spdx_string() -> None:
    # the TOML-table form `license = {text = ...}` is deprecated by setuptools (builds break in 2027)
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]
