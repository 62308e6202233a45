"""SEED's queue across two processes: every rank enqueues the whole global batch's teacher embeddings, in rank order."""

import pytest
import torch

from selfsup.distributed import gather
from selfsup.methods import Distillation
from tests.helpers import random_digits_backbone, run_on_two_processes

BATCH, STEPS, QUEUE = 4, 3, 16  # 3 steps of 2 x 4 embeddings: the queue wraps around once


def _model(teacher: str) -> Distillation:
    torch.manual_seed(0)
    settings = dict(backbone="small_conv", backbone_kwargs={"width": 4}, loss="seed", queue_size=QUEUE)
    return Distillation(teacher=teacher, **settings)


def _batch(step: int):
    generator = torch.Generator().manual_seed(step)
    return torch.randn(2 * BATCH, 3, 16, 16, generator=generator), torch.arange(2 * BATCH) % 10


def _queue_worker(rank, world_size, teacher, out_path):
    model = _model(teacher)
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    for step in range(STEPS):
        images, labels = _batch(step)
        model.training_step(([images[local]], labels[local]), step)
    result = {"queues": gather(model.queue.keys.unsqueeze(0)), "pointers": gather(model.queue.pointer.reshape(1))}
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_after_k_steps_both_ranks_hold_the_queue_of_one_process_on_the_whole_batch(tmp_path):
    teacher = random_digits_backbone(tmp_path / "teacher.pt", seed=0, width=8)
    run_on_two_processes(_queue_worker, teacher, str(tmp_path / "queues.pt"))
    result = torch.load(tmp_path / "queues.pt")

    single = _model(teacher)
    initial = single.queue.keys.clone()
    for step in range(STEPS):
        images, labels = _batch(step)
        single.training_step(([images], labels), step)

    assert torch.equal(result["queues"][0], result["queues"][1])
    assert result["pointers"].tolist() == [STEPS * 2 * BATCH % QUEUE] * 2
    torch.testing.assert_close(result["queues"][0], single.queue.keys)
    assert not torch.allclose(single.queue.keys, initial)
