import json

import pytest
import torch

from knnlab.cli import main
from knnlab.data import read_image, write_image
from knnlab.n3.dncnn import DnCNN


@pytest.fixture
def tiny_model(tmp_path):
    torch.manual_seed(0)
    net = DnCNN(depth=3, features=4).eval()
    net.save_pretrained(tmp_path / "model")
    return net, tmp_path / "model"


def test_denoise_rgb_file_tiled(tmp_path, tiny_model, capsys):
    net, folder = tiny_model
    img = torch.rand(3, 50, 70, generator=torch.Generator().manual_seed(1))
    write_image(tmp_path / "in.png", img)
    out = tmp_path / "out" / "den.png"
    code = main(
        ["denoise", str(tmp_path / "in.png"), "-o", str(out), "--sigma", "25", "--model",
         str(folder), "--tile", "32", "--overlap", "16", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    got = read_image(out)
    x = read_image(tmp_path / "in.png")
    with torch.no_grad():
        ref = net(x[:, None]).squeeze(1).clamp(0, 1)  # channel-wise, untiled
    assert got.shape == (3, 50, 70)
    assert (got - ref).abs().max() <= 1 / 255 + 1e-6  # 8-bit rounding only


def test_denoise_folder(tmp_path, tiny_model):
    _, folder = tiny_model
    for i in range(2):
        write_image(tmp_path / "in" / f"a{i}.png", torch.rand(1, 20, 24))
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--sigma", "15",
                 "--model", str(folder), "--device", "cpu"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [".knnlab-run", "a0.png", "a1.png"]


def test_denoise_folder_is_all_or_nothing(tmp_path, tiny_model, monkeypatch, capsys):
    """A failure at the second image leaves no output folder (and an earlier run's untouched);
    a finished run replaces an earlier run's folder whole; a user's own folder is refused."""
    import knnlab.data

    _, folder = tiny_model
    for i in range(3):
        write_image(tmp_path / "in" / f"a{i}.png", torch.rand(1, 20, 24))
    args = ["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--sigma", "15",
            "--model", str(folder), "--device", "cpu"]  # fmt: skip
    real_write = knnlab.data.write_image
    calls = []

    def failing_write(path, image, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(path, image, **kw)

    monkeypatch.setattr(knnlab.data, "write_image", failing_write)
    with pytest.raises(OSError):
        main(args)
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")] == []
    monkeypatch.setattr(knnlab.data, "write_image", real_write)

    assert main(args) == 0
    (tmp_path / "in" / "a2.png").unlink()
    assert main(args) == 0  # the earlier run's a2.png does not stay beside the new results
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [".knnlab-run", "a0.png", "a1.png"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    calls.clear()
    monkeypatch.setattr(knnlab.data, "write_image", failing_write)
    with pytest.raises(OSError):
        main(args)
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code = main([*args[:3], str(mine), *args[4:]])
    err = capsys.readouterr().err
    assert code == 2 and "did not write" in err and err.count("\n") == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_denoise_too_small_for_n3net_is_one_line(tmp_path, capsys):
    from knnlab.n3.n3net import N3Net, N3NetConfig

    N3Net(N3NetConfig(stage_depth=2, features=4, embed_features=4, k=1)).save_pretrained(
        tmp_path / "n3"
    )
    write_image(tmp_path / "s.png", torch.rand(1, 60, 90))
    code = main(["denoise", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.png"), "--sigma",
                 "25", "--model", str(tmp_path / "n3"), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "at least 76×76" in err and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_eval_command_table_and_json(tmp_path, tiny_model, capsys):
    _, folder = tiny_model
    for i in range(2):
        write_image(tmp_path / "set" / f"b{i}.png", torch.rand(1, 24, 24))
    out = tmp_path / "res.json"
    code = main(["eval", "denoise", "--model", str(folder), "--sigma", "25", "--dataset",
                 str(tmp_path / "set"), "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0
    res = json.loads(out.read_text())
    assert res["num_images"] == 2 and res["results"][0]["model"] == "model"
    assert "PSNR" in capsys.readouterr().out


def test_eval_dncnn_without_weights_explains(capsys):
    assert main(["eval", "denoise", "--model", "dncnn", "--sigma", "25", "--dataset", "."]) == 2
    assert "knnlab train denoise" in capsys.readouterr().err


@pytest.mark.slow
def test_train_command_short_budget_then_resume(tmp_path, capsys):
    for i in range(4):
        write_image(tmp_path / "tr" / f"t{i}.png", torch.rand(1, 24, 24))
    args = ["train", "denoise", "--model", "dncnn", "--sigma", "25", "--dataset",
            str(tmp_path / "tr"), "--budget-steps", "2", "--batch-size", "2", "--patch-size", "16",
            "--out", str(tmp_path / "run"), "--eval-dataset", str(tmp_path / "tr"), "--eval-limit",
            "1", "--bn-batches", "2", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["eval"]["num_images"] == 1
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    # the trained folder is a --model for the other commands
    assert main(["eval", "denoise", "--model", str(tmp_path / "run"), "--sigma", "25",
                 "--dataset", str(tmp_path / "tr"), "--device", "cpu"]) == 0  # fmt: skip
    args[args.index("2")] = "3"  # --budget-steps 3, resumed from step 2
    assert main([*args, "--resume"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_demo_section_skips_without_data(tmp_path, monkeypatch):
    from knnlab.demo import run_section
    from knnlab.errors import DataNotFoundError
    from knnlab.n3.demo import section

    monkeypatch.setenv("KNNLAB_DATA", str(tmp_path))  # no Set12 here
    with pytest.raises(DataNotFoundError, match="Set12"):
        section(quick=True, device=torch.device("cpu"), seed=0)
    res = run_section("denoise", quick=True, device=torch.device("cpu"), seed=0)
    assert res.experiment == "denoise" and res.tables == []
    assert res.skipped is not None and "data set Set12 not found" in res.skipped
