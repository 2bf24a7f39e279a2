import pytest

from knnlab.errors import DataNotFoundError
from knnlab.paths import cache_dir, data_root, weights_root


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path))
    assert data_root() == tmp_path
    assert weights_root() == tmp_path


def test_bad_env_var_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNLAB_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="KNNLAB_DATA"):
        data_root()


def test_missing_root_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("KNNLAB_WEIGHTS", raising=False)
    monkeypatch.setattr("knnlab.paths._candidates", lambda sub: [tmp_path / "absent" / sub])
    assert weights_root(required=False) is None
    with pytest.raises(DataNotFoundError, match="KNNLAB_WEIGHTS"):
        weights_root()


def test_cache_dir_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "c"))
    assert cache_dir().is_dir()


def test_download_root_defaults_to_cache_and_is_searched(tmp_path, monkeypatch):
    from knnlab.data import dataset_dir
    from knnlab.paths import download_root

    monkeypatch.delenv("KNNLAB_DATA", raising=False)
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr("knnlab.paths._candidates", lambda sub: [tmp_path / "absent"])
    assert download_root() == tmp_path / "c" / "datasets"
    assert data_root(required=False) is None  # an empty download folder is no data root
    with pytest.raises(DataNotFoundError, match="KNNLAB_DATA"):
        dataset_dir("Set12")
    (tmp_path / "c" / "datasets" / "Set12").mkdir()
    assert dataset_dir("set12") == tmp_path / "c" / "datasets" / "Set12"
