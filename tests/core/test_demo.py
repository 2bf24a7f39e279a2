"""``knnlab demo``: sections whose data or weights are missing are skipped inside the report (the
rest is written, exit 0); other errors still fail as a whole; every section lands in OUT/<section>/
as an experiment folder, and OUT/results.json gathers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knnlab import demo
from knnlab.cli import main
from knnlab.errors import DataNotFoundError, InputError
from knnlab.results import ExperimentResult, read_experiment


def test_demo_without_data_reports_skipped_sections(tmp_path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("KNNLAB_DATA", str(empty))
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(empty))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    # the kNN section needs no data and ran
    assert results["knn"]["skipped"] is None
    assert results["knn"]["tables"][0]["rows"][0]["agreement"] == 1.0
    assert "kNN search" in html and "Time and agreement" in html
    # denoise (Set12) and hubness (MNIST) say why they did not run
    for name, data_set in (("denoise", "Set12"), ("hubness", "MNIST")):
        reason = results[name]["skipped"]
        assert reason and f"data set {data_set} not found" in reason
        assert f"skipped: data set {data_set} not found" in html
        assert read_experiment(out / name).skipped == reason
    # every other section needs data or weights, and each says so instead of failing the demo
    assert set(results["_meta"]["skipped"]) == set(results["_meta"]["sections"]) - {"knn"}


def test_demo_writes_one_folder_per_section_and_gathers_them(tmp_path, monkeypatch) -> None:
    def fake(quick: bool, device: object, seed: int) -> ExperimentResult:
        res = ExperimentResult("whatever", "Fake section", summary="a fake")
        res.add_table("t", [{"method": "a", "value": 1.5}], caption="a table")
        res.add_figure(_png(), "fig.png", caption="a figure")
        return res

    def missing(quick: bool, device: object, seed: int) -> ExperimentResult:
        raise DataNotFoundError("weights x.safetensors not found")

    monkeypatch.setattr(
        demo,
        "SECTIONS",
        {"one": lambda: ("One", fake), "two": lambda: ("Two", missing)},
    )
    html_path, json_path = demo.run_demo(tmp_path / "o", quick=True, device="cpu")
    gathered = json.loads(json_path.read_text())
    assert sorted(gathered) == ["_meta", "one", "two"]
    one = json.loads((tmp_path / "o" / "one" / "results.json").read_text())
    assert gathered["one"] == one and one["experiment"] == "one"  # named after the section
    assert (tmp_path / "o" / "one" / "fig.png").read_bytes() == _png()
    two = read_experiment(tmp_path / "o" / "two")
    assert two.title == "Two" and two.skipped == "weights x.safetensors not found"
    html = html_path.read_text()
    assert "Fake section" in html and "a table" in html and "a figure" in html
    assert "skipped: weights x.safetensors not found" in html
    assert html.count('src="data:image/png;base64,') == 1


def test_demo_fails_whole_on_other_errors(tmp_path, monkeypatch) -> None:
    def broken(quick: bool, device: object, seed: int) -> ExperimentResult:
        raise InputError("bad setting")

    def fine(quick: bool, device: object, seed: int) -> ExperimentResult:
        return ExperimentResult("x", "X")

    monkeypatch.setattr(
        demo, "SECTIONS", {"fine": lambda: ("Fine", fine), "broken": lambda: ("B", broken)}
    )
    with pytest.raises(InputError, match="bad setting"):
        demo.run_demo(tmp_path / "o", device="cpu")
    assert not (tmp_path / "o").exists()
    assert list(tmp_path.iterdir()) == []  # no partial folder left behind


def test_hubness_section_without_shipped_weights_is_skipped(tmp_path, monkeypatch) -> None:
    import knnlab.hubness.gan as gan

    monkeypatch.setattr(gan, "BUILTIN_GAN_DIR", Path(tmp_path / "no-weights"))
    res = demo.run_section("hubness", quick=True, device="cpu", seed=0)
    assert res.experiment == "hubness" and res.tables == []
    assert res.skipped is not None and "built-in GAN weights are missing" in res.skipped


def _png() -> bytes:
    from knnlab.report import image_to_png_bytes

    return image_to_png_bytes([[0.0, 1.0], [0.5, 0.25]])


@pytest.mark.slow
def test_quick_demo_with_data_runs_every_section(tmp_path, shared_datasets) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--device", "cpu", "--out", str(out)]) == 0
    gathered = json.loads((out / "results.json").read_text())
    assert gathered["_meta"]["skipped"] == {} or set(gathered["_meta"]["skipped"]) <= {"denoise"}
    for name in gathered["_meta"]["sections"]:
        assert gathered[name] == json.loads((out / name / "results.json").read_text())
    hub = read_experiment(out / "hubness")
    assert hub.skipped is None and hub.table("main").rows[0]["method"] == "Hubs(16)"
    assert all((out / "hubness" / f.file).is_file() for f in hub.figures)
    html = (out / "report.html").read_text()
    assert "Hubness priors for latent sampling (built-in MNIST GAN)" in html
    assert html.count('src="data:image/png;base64,') >= len(hub.figures)


def test_report_command_renders_experiment_folders(tmp_path, capsys) -> None:
    from knnlab.results import write_experiment

    a = ExperimentResult("a", "First <A>", summary="one")
    a.add_table("t", [{"method": "x", "value": 0.125}], caption="cap A")
    a.add_figure(_png(), "f.png", caption="fig A")
    write_experiment(tmp_path / "a", a)
    write_experiment(tmp_path / "b", ExperimentResult.skip("b", "Second", "no data"))
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]) == 0
    html = out.read_text()
    assert html.index("First &lt;A&gt;") < html.index("Second")
    assert "cap A" in html and "0.125" in html and "skipped: no data" in html
    assert html.count('src="data:image/png;base64,') == 1
    capsys.readouterr()
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "results.json" in err and err.count("\n") == 1
