import numpy as np
import pytest

from knnlab.data.twoview import load_scene, pair_matches, read_pairs_file
from knnlab.errors import InputError


def _line(n0="a.png", n1="b.png", K="800 0 320 0 800 240 0 0 1", T=None):
    T = T or "1 0 0 1 0 1 0 0 0 0 1 0 0 0 0 1"
    return f"{n0} {n1} 0 0 {K} {K} {T}"


def test_read_pairs_file(tmp_path):
    f = tmp_path / "pairs_with_gt.txt"
    f.write_text(
        _line() + "\n" + _line("c.png", "d.png", T="1 0 0 0 0 1 0 0 0 0 1 3 0 0 0 1") + "\n"
    )
    pairs = read_pairs_file(f)
    assert [(p.name0, p.name1) for p in pairs] == [("a.png", "b.png"), ("c.png", "d.png")]
    np.testing.assert_allclose(pairs[1].t, [0, 0, 1])
    np.testing.assert_allclose(pairs[0].K1, [[800, 0, 320], [0, 800, 240], [0, 0, 1]])


@pytest.mark.parametrize(
    "text, match",
    [
        (_line() + " 7", "39 fields"),
        (_line(K="0 0 320 0 800 240 0 0 1"), "singular"),
        (_line(T="1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"), "zero translation"),
        ("", "no pairs"),
    ],
)
def test_bad_pair_files(tmp_path, text, match):
    f = tmp_path / "pairs_with_gt.txt"
    f.write_text(text + "\n")
    with pytest.raises(InputError, match=match):
        read_pairs_file(f)


def test_real_scenes_parse(shared_datasets):
    r = load_scene("reichstag")
    lund = load_scene("lund_door")
    assert len(r) == 45 and len(lund) == 66
    assert lund[0].k1_0 == pytest.approx(-0.0336422) and r[0].k1_0 == 0.0


@pytest.mark.slow
def test_real_pair_labels_agree_with_ground_truth(shared_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path))
    m = pair_matches(load_scene("reichstag")[0])
    assert 200 <= len(m["x"]) <= 2000
    assert 0.02 < m["label"].mean() < 0.6
    assert list(tmp_path.glob("twoview/*.npz"))  # cached
