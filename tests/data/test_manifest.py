"""Per-file manifests: every named set in ../shared verifies, and damage is found."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from knnlab.data import DATASETS
from knnlab.data.manifest import read_manifest, verify_dataset


def test_every_named_set_has_a_manifest_of_full_digests():
    for name in DATASETS:
        entries = read_manifest(name)
        assert entries, name
        for rel, entry in entries.items():
            assert all(len(d) == 64 for d in entry.digests) and not rel.startswith("/")


@pytest.mark.slow
def test_every_named_set_in_shared_verifies(shared_datasets):
    for name in DATASETS:
        report = verify_dataset(name, shared_datasets / name, progress=False)
        assert report.ok and not report.extra and not report.derived_missing, report.summary()
        assert report.checked == len(read_manifest(name)), name


def test_damage_is_found_and_the_cli_exits_2(shared_datasets, tmp_path, capsys):
    from knnlab.cli import main

    copy = tmp_path / "Set5"
    shutil.copytree(shared_datasets / "Set5", copy)
    first = sorted(copy.iterdir())[0]
    # an independent digest: the manifest line for this file equals hashlib's
    entries = read_manifest("Set5")
    assert hashlib.sha256(first.read_bytes()).hexdigest() in entries[first.name].digests
    assert main(["data", "verify", "Set5", "--root", str(tmp_path)]) == 0
    data = bytearray(first.read_bytes())
    data[-1] ^= 1
    first.write_bytes(bytes(data))
    (copy / "stray.txt").write_text("x")
    second = sorted(copy.iterdir())[1]
    second.unlink()
    report = verify_dataset("Set5", copy, progress=False)
    assert report.mismatched == [first.name] and report.missing == [second.name]
    assert report.extra == ["stray.txt"] and not report.ok
    capsys.readouterr()
    assert main(["data", "verify", "set5", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verification failed for Set5" in err


def test_derived_files_may_be_absent(shared_datasets, tmp_path):
    copy = tmp_path / "CC15"
    shutil.copytree(shared_datasets / "CC15", copy)
    (copy / "README_source.txt").unlink()
    report = verify_dataset("CC15", copy, progress=False)
    assert report.ok and report.derived_missing == ["README_source.txt"]
