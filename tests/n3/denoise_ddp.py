"""``train_denoiser`` as a subprocess under torchrun, recording which rank does the final work.

python denoise_ddp.py IMAGES OUT

Writes OUT/calls_rank{r}.txt: one line per call of the BatchNorm recalibration, the evaluation and
``save_pretrained`` on rank r.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import knnlab.n3.training as training
from knnlab.train import rank


def main(images: str, out: str) -> None:
    torch.set_num_threads(1)
    calls: list[str] = []
    recal, make_eval = training.recalibrate_batchnorm, training._make_eval_fn

    def recal_spy(model, batches):
        calls.append("recalibrate_batchnorm")
        return recal(model, batches)

    def make_eval_spy(cfg, device):
        label, fn = make_eval(cfg, device)

        def run(model):
            calls.append("evaluate")
            return fn(model)

        return label, run

    training.recalibrate_batchnorm = recal_spy
    training._make_eval_fn = make_eval_spy
    from knnlab.n3.dncnn import DnCNN

    save = DnCNN.save_pretrained

    def save_spy(self, directory):
        calls.append("save_pretrained")
        return save(self, directory)

    DnCNN.save_pretrained = save_spy  # type: ignore[method-assign]
    cfg = training.DenoiseTrainConfig(
        model="dncnn", budget_steps=2, batch_size=4, patch_size=24, dataset=images,
        eval_dataset=images, eval_limit=1, bn_batches=1, checkpoint_every=500,
    )  # fmt: skip
    training.train_denoiser(cfg, out, device="cpu")
    (Path(out) / f"calls_rank{rank()}.txt").write_text("".join(c + "\n" for c in calls))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
