"""DINO's centre across two processes: half the batch on each rank gives the single-process centre."""

import pytest
import torch

from selfsup.losses.dino import DINOLoss
from tests.helpers import run_on_two_processes

BATCH = 3  # per rank


def _teacher_outputs():
    generator = torch.Generator().manual_seed(5)
    return [torch.randn(2 * BATCH, 6, generator=generator) for _ in range(2)]  # two global crops


def _worker(rank, world_size, out_path):
    loss = DINOLoss(6, center_momentum=0.9)
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    for _ in range(2):  # two steps: the EMA of the global batch's means
        loss.update_center([outputs[local] for outputs in _teacher_outputs()])
    torch.save(loss.center, f"{out_path}.{rank}")


@pytest.mark.slow
def test_two_ranks_with_half_the_batch_each_hold_the_single_process_centre(tmp_path):
    run_on_two_processes(_worker, str(tmp_path / "center"))
    single = DINOLoss(6, center_momentum=0.9)
    for _ in range(2):
        single.update_center(_teacher_outputs())
    for rank in (0, 1):
        torch.testing.assert_close(torch.load(tmp_path / f"center.{rank}"), single.center)
    alone = DINOLoss(6, center_momentum=0.9)  # one rank's half, without the all-reduce
    for _ in range(2):
        alone.update_center([outputs[:BATCH] for outputs in _teacher_outputs()])
    assert not torch.allclose(alone.center, single.center)
