"""One image or a folder of images in, the same out: the input/output rules of the image commands
(``knnlab denoise``, ``knnlab sr``), in one place.

- Every input is read and checked before any work (a bad file fails the whole job at once).
- A single image is written atomically to OUTPUT (a file path, or a folder to put it in).
- A folder is all or nothing: the PNGs are built in a temporary sibling folder that becomes OUTPUT
  only when every image is done (:func:`knnlab.io_utils.atomic_dir`), so a failure or a kill leaves
  no half-filled OUTPUT. An OUTPUT folder of an earlier knnlab run is replaced whole; an existing
  folder holding other files is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from knnlab.errors import InputError

__all__ = ["ImageJob", "plan_image_job"]


@dataclass
class ImageJob:
    """The planned job: ``items`` are ``(source, output name, image (C, H, W))``; ``folder`` says
    whether OUTPUT is a folder (else ``output`` is the one output file)."""

    output: Path
    folder: bool
    items: list[tuple[Path, str, torch.Tensor]]

    def run(
        self, fn: Callable[[torch.Tensor], torch.Tensor], desc: str = "images"
    ) -> list[tuple[Path, Path]]:
        """Apply ``fn`` to every image and write the results; returns ``(source, written file)``."""
        from knnlab.data import write_image
        from knnlab.io_utils import atomic_dir
        from knnlab.progress import progress

        if not self.folder:
            ((src, _, img),) = self.items
            write_image(self.output, fn(img))
            return [(src, self.output)]
        with atomic_dir(self.output) as tmp:
            for _src, name, img in progress(self.items, desc=desc, total=len(self.items)):
                write_image(tmp / name, fn(img))
        return [(src, self.output / name) for src, name, _ in self.items]


def plan_image_job(input_path: Path, output: Path) -> ImageJob:
    """Check INPUT and OUTPUT and read every input image (see the module docstring)."""
    from knnlab.data.images import check_output_image, list_images, read_image
    from knnlab.io_utils import RUN_MARKER

    if not input_path.exists():
        raise InputError(f"INPUT {str(input_path)!r} does not exist")
    if not input_path.is_dir():
        if output.is_dir():
            output = output / (input_path.stem + ".png")
        check_output_image(output, what="-o")
        return ImageJob(output, False, [(input_path, output.name, read_image(input_path))])
    files = list_images(input_path)
    if not files:
        raise InputError(f"INPUT folder {str(input_path)!r} holds no images")
    if output.exists() and not output.is_dir():
        raise InputError(f"-o {str(output)!r}: INPUT is a folder, so the output must be a folder")
    if output.resolve() == input_path.resolve():
        raise InputError(f"-o {str(output)!r} is INPUT itself; choose another folder")
    if output.is_dir() and any(output.iterdir()) and not (output / RUN_MARKER).exists():
        raise InputError(
            f"-o {str(output)!r}: the folder holds files that knnlab did not write; the output "
            "folder is written as a whole, so choose a new or an empty folder"
        )
    names = [f.stem + ".png" for f in files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise InputError(
            f"INPUT folder {str(input_path)!r}: several images would be written as {clash}"
        )
    return ImageJob(
        output, True, [(f, n, read_image(f)) for f, n in zip(files, names, strict=True)]
    )
