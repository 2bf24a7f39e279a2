"""Per-file SHA-256 manifests of the named data sets, and their verification.

Archives made on the fly by GitHub are not byte-stable, so a data set is verified file by file after
extraction, never by the archive's digest. Each named set has a manifest in
``knnlab/data/manifests/<name>.sha256`` (``/`` in a name becomes ``__``), made from the reference
copies (``../shared/datasets``) with ``knnlab data manifest NAME``. A line is::

    <sha256>  <path relative to the set's folder>[  # derived]

``# derived`` marks a file that the reference copy adds to the upstream files (a licence note, a
pair list in another format, an index): it is checked when present but may be absent from a fresh
download. A path listed twice accepts either digest (MNIST: the Keras ``mnist.npz`` and the
reference copy converted from PNGs hold the same digits in different bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from knnlab.errors import InputError
from knnlab.hub import sha256_file

__all__ = [
    "MANIFEST_DIR",
    "ManifestEntry",
    "VerifyReport",
    "manifest_path",
    "read_manifest",
    "verify_dataset",
    "write_manifest",
]

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
_DERIVED = "# derived"


@dataclass
class ManifestEntry:
    digests: set[str]
    derived: bool = False


@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found; ``ok`` when every required file is present and matches."""

    name: str
    folder: Path
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    derived_missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched

    def summary(self) -> str:
        noun = "file matches" if self.checked == 1 else "files match"
        parts = [f"{self.name}: {self.checked} {noun}"]
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} differ ({_few(self.mismatched)})")
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_few(self.missing)})")
        if self.derived_missing:
            parts.append(
                f"{len(self.derived_missing)} files of the reference copy not in this one "
                f"({_few(self.derived_missing)})"
            )
        if self.extra:
            parts.append(f"{len(self.extra)} not in the manifest ({_few(self.extra)})")
        return "; ".join(parts)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def manifest_path(name: str) -> Path:
    return MANIFEST_DIR / (name.replace("/", "__") + ".sha256")


def read_manifest(name: str, path: str | os.PathLike | None = None) -> dict[str, ManifestEntry]:
    """``relative path -> ManifestEntry`` of the named set (or of the manifest file ``path``)."""
    path = Path(path) if path is not None else manifest_path(name)
    if not path.is_file():
        raise InputError(f"no manifest for data set {name!r} ({path} is missing)")
    entries: dict[str, ManifestEntry] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        derived = line.endswith(_DERIVED)
        if derived:
            line = line[: -len(_DERIVED)].rstrip()
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise InputError(f"{path}:{number}: expected '<sha256>  <path>', got {raw!r}")
        entry = entries.setdefault(rel, ManifestEntry(set(), derived))
        entry.digests.add(digest.lower())
    return entries


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def verify_dataset(
    name: str, folder: str | os.PathLike | None = None, *, progress: bool = True
) -> VerifyReport:
    """Check every file of the named set's manifest in ``folder`` (default: where the set resolves)."""
    from knnlab.data.datasets import dataset_dir, resolve_name
    from knnlab.progress import progress as bar

    canonical = resolve_name(name)
    manifest = read_manifest(canonical)
    folder = Path(folder) if folder is not None else dataset_dir(canonical)
    report = VerifyReport(canonical, folder)
    present = set(_files(folder))
    items = sorted(manifest.items())
    if not progress:
        iterator = iter(items)
    else:
        iterator = bar(items, desc=f"verify {canonical}", total=len(items))
    for rel, entry in iterator:
        if rel not in present:
            (report.derived_missing if entry.derived else report.missing).append(rel)
            continue
        if sha256_file(folder / rel) in entry.digests:
            report.checked += 1
        else:
            report.mismatched.append(rel)
    report.extra = sorted(present - set(manifest))
    return report


def write_manifest(
    name: str,
    folder: str | os.PathLike,
    *,
    derived: set[str] | None = None,
    alternatives: dict[str, list[str]] | None = None,
    out: str | os.PathLike | None = None,
) -> Path:
    """Write the manifest of ``folder`` (every non-hidden file) for data set ``name``.

    ``derived``: relative paths to mark ``# derived``; ``alternatives``: more accepted digests per
    path. The manifest goes to :func:`manifest_path` unless ``out`` is given.
    """
    from knnlab.io_utils import atomic_write_text

    folder = Path(folder)
    derived = derived or set()
    alternatives = alternatives or {}
    lines = [f"# knnlab data manifest: {name} (sha256 of each file; see knnlab/data/manifest.py)"]
    for rel in _files(folder):
        mark = f"  {_DERIVED}" if rel in derived else ""
        for digest in [sha256_file(folder / rel), *alternatives.get(rel, [])]:
            lines.append(f"{digest}  {rel}{mark}")
    path = Path(out) if out is not None else manifest_path(name)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
