import pytest
import torch

from knnlab.cli import main
from knnlab.data import read_image, write_image
from knnlab.n3.n3net_sr import N3NetSR
from knnlab.n3.vdsr import VDSR


@pytest.fixture
def vdsr_dir(tmp_path):
    torch.manual_seed(0)
    VDSR(depth=3, features=4).eval().save_pretrained(tmp_path / "vdsr")
    return tmp_path / "vdsr"


def _one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


def test_sr_rgb_file(tmp_path, vdsr_dir, capsys):
    write_image(tmp_path / "in.png", torch.rand(3, 20, 30))
    code = main(["sr", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--scale", "3",
                 "--model", str(vdsr_dir), "--tile", "32", "--overlap", "16", "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read_image(tmp_path / "out.png").shape == (3, 60, 90)


def test_sr_gray_folder_bicubic(tmp_path, capsys):
    for i in range(2):
        write_image(tmp_path / "in" / f"a{i}.png", torch.rand(1, 10, 12))
    code = main(["sr", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--scale", "2",
                 "--model", "bicubic"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read_image(tmp_path / "out" / "a1.png").shape == (1, 20, 24)


def test_sr_bad_inputs(tmp_path, vdsr_dir, capsys):
    img = tmp_path / "in.png"
    write_image(img, torch.rand(3, 20, 20))
    _one_line_error(capsys, main(["sr", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png")]),
                    "does not exist")  # fmt: skip
    _one_line_error(capsys, main(["sr", str(img), "-o", str(tmp_path / "o.png"), "--scale", "1"]),
                    "--scale 1")  # fmt: skip
    _one_line_error(capsys, main(["sr", str(img), "-o", str(tmp_path / "o.png"), "--model",
                                  str(tmp_path)]), "config.json")  # fmt: skip
    data = img.read_bytes()
    (tmp_path / "broken.png").write_bytes(data[: len(data) // 2])  # truncated
    _one_line_error(capsys, main(["sr", str(tmp_path / "broken.png"), "-o",
                                  str(tmp_path / "o.png"), "--model", "bicubic"]))  # fmt: skip
    # N3NetSR needs >= 76 px after upsampling: 20 px at ×2 is too small
    N3NetSR(features=4, embed_features=4, stage_depth=2).eval().save_pretrained(tmp_path / "n3")
    _one_line_error(capsys, main(["sr", str(img), "-o", str(tmp_path / "o.png"), "--scale", "2",
                                  "--model", str(tmp_path / "n3")]), "at least 38×38")  # fmt: skip
    assert not (tmp_path / "o.png").exists()


def test_train_and_eval_bad_arguments(capsys):
    _one_line_error(capsys, main(["train", "sr", "--scales", "2,x"]), "--scales '2,x'")
    _one_line_error(capsys, main(["train", "sr", "--batch-size", "4"]), "--batch-size 4")
    _one_line_error(capsys, main(["eval", "sr", "--dataset", "Set7"]), "--dataset 'Set7'")
    _one_line_error(capsys, main(["experiment", "sr", "--datasets", "Urban100"]), "--datasets")


def test_experiment_checks_its_options_and_output_first(capsys):
    _one_line_error(capsys, main(["experiment", "sr", "--eval-scales", "x"]), "--eval-scales 'x'")
    _one_line_error(capsys, main(["experiment", "sr", "-o", "/proc/no-such-dir"]), "--out")
