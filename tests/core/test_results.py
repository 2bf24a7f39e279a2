import json

import numpy as np
import pytest

from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json
from knnlab.report import Report
from knnlab.results import ExperimentResult, read_experiment, write_experiment


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4, 3), 128).save(buf, format="PNG")
    return buf.getvalue()


def test_write_read_round_trip_and_layout(tmp_path):
    res = ExperimentResult("toy", "A toy experiment", summary="two rows")
    res.add_table(
        "t",
        [{"method": "a", "psnr": 30.5}, {"method": "b", "psnr": float("nan")}],
        caption="PSNR",
        notes=["b diverged"],
    )
    res.add_figure(_png(), "fig.png", caption="a figure")
    res.protocol["sigma"] = 25
    res.timings["total_s"] = np.float32(1.5)
    out = tmp_path / "out"
    path = write_experiment(out, res)
    raw = json.loads(path.read_text())  # strict JSON: no NaN token
    assert raw["tables"][0]["rows"][1]["psnr"] is None
    assert raw["tables"][0]["columns"] == ["method", "psnr"]
    assert raw["files"] == ["fig.png"] and (out / "fig.png").read_bytes() == _png()
    assert raw["machine"]["cpu_count"] >= 1 and raw["timings"]["total_s"] == 1.5
    back = read_experiment(out)
    assert back.table("t").rows[0] == {"method": "a", "psnr": 30.5}
    assert back.figures[0].file == "fig.png" and back.protocol == {"sigma": 25}


def test_nan_is_written_as_null():
    import math

    from knnlab.io_utils import json_safe

    assert json_safe({"a": [math.nan, math.inf, 1.0], "b": np.float64("nan")}) == {
        "a": [None, None, 1.0],
        "b": None,
    }


def test_atomic_write_json_has_no_nan_token(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"x": float("nan"), "y": [float("-inf")]})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": [None]}


def test_report_renders_an_experiment_folder(tmp_path):
    res = ExperimentResult("toy", "Toy title", summary="hello")
    res.add_table("t", [{"method": "a", "psnr": 30.5}], caption="PSNR table")
    res.add_figure(_png(), "fig.png", caption="the caption")
    write_experiment(tmp_path / "exp", res)
    report = Report("r")
    report.add_experiment(tmp_path / "exp")
    page = report.to_html()
    assert "Toy title" in page and "PSNR table" in page and "30.500" in page
    assert "data:image/png;base64," in page and "the caption" in page
    assert report.results["toy"]["title"] == "Toy title"


def test_bad_names_and_folders_are_input_errors(tmp_path):
    res = ExperimentResult("toy", "t")
    with pytest.raises(InputError, match="plain name"):
        res.add_file("../escape.png", b"")
    with pytest.raises(InputError, match="missing"):
        read_experiment(tmp_path)
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        read_experiment(tmp_path)


def test_table_labels_round_trip_and_name_the_headers(tmp_path):
    from knnlab.report import Report

    res = ExperimentResult("toy", "Toy")
    res.add_table("t", [{"method": "a", "psnr": 30.5}], labels={"psnr": "PSNR (dB)"})
    write_experiment(tmp_path / "o", res)
    back = read_experiment(tmp_path / "o")
    assert back.table("t").labels == {"psnr": "PSNR (dB)"}
    rep = Report("r")
    rep.add_experiment(tmp_path / "o")
    assert "<th>method</th><th>PSNR (dB)</th>" in rep.to_html()
