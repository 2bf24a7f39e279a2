"""The shared input/output rules of the image commands (denoise, sr)."""

import pytest
import torch

from knnlab.data import read_image, write_image
from knnlab.data.image_job import plan_image_job
from knnlab.errors import InputError


def test_folder_job_is_all_or_nothing_and_replaces_an_earlier_run(tmp_path):
    for i in range(3):
        write_image(tmp_path / "in" / f"a{i}.png", torch.full((1, 4, 5), i / 4))
    out = tmp_path / "out"
    job = plan_image_job(tmp_path / "in", out)
    assert job.folder and [name for _, name, _ in job.items] == ["a0.png", "a1.png", "a2.png"]

    def boom(img):
        if img.mean() > 0.3:
            raise RuntimeError("disk full")
        return 1 - img

    with pytest.raises(RuntimeError):
        job.run(boom)
    assert not out.exists()  # nothing half-written
    written = job.run(lambda img: 1 - img)
    assert [p.name for _, p in written] == ["a0.png", "a1.png", "a2.png"]
    torch.testing.assert_close(
        read_image(out / "a1.png"), torch.full((1, 4, 5), 0.75), atol=1 / 255, rtol=0
    )
    (tmp_path / "in" / "a2.png").unlink()
    plan_image_job(tmp_path / "in", out).run(lambda img: img)
    assert sorted(p.name for p in out.iterdir()) == [".knnlab-run", "a0.png", "a1.png"]


def test_single_image_and_refusals(tmp_path):
    write_image(tmp_path / "x.png", torch.rand(3, 6, 6))
    (tmp_path / "o").mkdir()
    job = plan_image_job(tmp_path / "x.png", tmp_path / "o")  # a folder: the image goes inside
    assert not job.folder and job.output == tmp_path / "o" / "x.png"
    assert job.run(lambda img: img)[0][1].is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", torch.rand(1, 4, 4))
    with pytest.raises(InputError, match="did not write"):
        plan_image_job(tmp_path / "in", mine)
    with pytest.raises(InputError, match="INPUT itself"):
        plan_image_job(tmp_path / "in", tmp_path / "in")
    with pytest.raises(InputError, match="does not exist"):
        plan_image_job(tmp_path / "nope", tmp_path / "o2")
    with pytest.raises(InputError):
        plan_image_job(tmp_path / "x.png", tmp_path / "missing-dir" / "deeper" / "y.txt")
