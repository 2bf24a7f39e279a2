import numpy as np
import pytest
import torch

from knnlab.cli import main
from knnlab.n3.cnnet import CNNet, CNNetConfig


def _one_line_exit_2(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert match in err, err


def _scene(tmp_path, line):
    (tmp_path / "scene" / "images").mkdir(parents=True)
    (tmp_path / "scene" / "pairs_with_gt.txt").write_text(line + "\n")
    return tmp_path / "scene"


def test_eval_pair_file_with_wrong_field_count(tmp_path, capsys):
    scene = _scene(tmp_path, "a.png b.png 0 0 " + " ".join(["1"] * 30))
    _one_line_exit_2(capsys, ["eval", "corr", "--scene", str(scene)], "34 fields")


def test_eval_unknown_scene_and_bad_model(tmp_path, capsys):
    _one_line_exit_2(capsys, ["eval", "corr", "--scene", str(tmp_path / "nope")], "--scene")
    _one_line_exit_2(capsys, ["eval", "corr", "--model", str(tmp_path)], "not a model folder")


def test_match_unreadable_images(tmp_path, capsys):
    bad = tmp_path / "a.png"
    bad.write_bytes(b"not an image")
    out = str(tmp_path / "o.png")
    _one_line_exit_2(capsys, ["match", str(bad), str(bad), "-o", out, "--focal", "500"], "readable")
    _one_line_exit_2(
        capsys, ["match", str(tmp_path / "x.png"), str(bad), "-o", out, "--focal", "500"],
        "does not exist",
    )  # fmt: skip


def test_match_truncated_png_prints_only_our_line(tmp_path, capfd):
    # OpenCV logs its own line to file descriptor 2 on a broken PNG header; the user sees one line
    bad = tmp_path / "t.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    code = main(["match", str(bad), str(bad), "-o", str(tmp_path / "o.png"), "--focal", "500"])
    err = capfd.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def _textured(seed, shift=0):
    import cv2

    rng = np.random.default_rng(seed)
    img = (rng.random((240, 320)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    return np.roll(img, shift, axis=1)


def test_match_singular_intrinsics_and_missing_intrinsics(tmp_path, capsys):
    import cv2

    for name, shift in (("a.png", 0), ("b.png", 8)):
        cv2.imwrite(str(tmp_path / name), _textured(0, shift))
    a, b, out = str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "o.png")
    _one_line_exit_2(capsys, ["match", a, b, "-o", out, "--focal", "0"], "singular")
    _one_line_exit_2(capsys, ["match", a, b, "-o", out], "intrinsics needed")
    scene = _scene(tmp_path, f"a.png b.png 0 0 {'0 0 1 ' * 3}{'500 0 160 0 500 120 0 0 1'} "
                   "1 0 0 1 0 1 0 0 0 0 1 0 0 0 0 1")  # fmt: skip
    _one_line_exit_2(capsys, ["match", a, b, "-o", out, "--scene", str(scene)], "singular")
    assert not (tmp_path / "o.png").exists()


def test_match_draws_and_prints_pose(tmp_path, capsys):
    import cv2

    for name, shift in (("a.png", 0), ("b.png", 8)):
        cv2.imwrite(str(tmp_path / name), _textured(1, shift))
    torch.manual_seed(0)
    CNNet(CNNetConfig(channels=8, depth=1)).save_pretrained(tmp_path / "m")
    out = tmp_path / "o.png"
    code = main(["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out),
                 "--focal", "400", "--model", str(tmp_path / "m"), "--device", "cpu"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "predicted inliers" in text
    img = cv2.imread(str(out))
    assert img.shape == (240, 640, 3)


@pytest.mark.parametrize("argv", [["train", "corr", "--budget-steps", "0"],
                                  ["train", "corr", "--num-matches", "3"]])  # fmt: skip
def test_train_bad_options(argv, capsys, tmp_path):
    _one_line_exit_2(capsys, [*argv, "--out", str(tmp_path / "r")], argv[2])
