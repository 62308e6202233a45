"""MoCo across two processes: one queue holding both ranks' keys, Shuffle-BN that really shuffles."""

import pytest
import torch

from selfsup.distributed import gather, shuffle_across_ranks, unshuffle_across_ranks
from selfsup.methods import MoCo
from tests.helpers import run_on_two_processes

BATCH = 8


def _shuffle_worker(rank, world_size, out_path):
    torch.manual_seed(1234 + rank)  # ranks draw different permutations unless rank 0's is broadcast
    local = torch.arange(BATCH, dtype=torch.float32).unsqueeze(1) + 100 * rank
    shuffled, unshuffle = shuffle_across_ranks(local)
    restored = unshuffle_across_ranks(shuffled * 2, unshuffle)
    ragged = torch.arange(5 - 2 * rank, dtype=torch.float32)[:, None] + 10 * rank  # 5 rows, then 3
    result = {"shuffled": gather(shuffled), "restored": gather(restored), "ragged": gather(ragged)}
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_shuffle_bn_permutes_across_ranks_and_restores_order_and_gather_takes_ragged_ranks(tmp_path):
    """Also: an unpadded sampler's shards (the probes' test split) differ in length, and gather takes them."""
    run_on_two_processes(_shuffle_worker, str(tmp_path / "shuffle.pt"))
    result = torch.load(tmp_path / "shuffle.pt")
    original = torch.cat([torch.arange(BATCH) + 100 * r for r in range(2)]).float().unsqueeze(1)
    shuffled = result["shuffled"].flatten()
    assert sorted(shuffled.tolist()) == sorted(original.flatten().tolist())
    rank0_slice = shuffled[:BATCH]
    assert (rank0_slice >= 100).any() and (rank0_slice < 100).any()
    torch.testing.assert_close(result["restored"], original * 2)
    assert torch.equal(result["ragged"], torch.tensor([0.0, 1, 2, 3, 4, 10, 11, 12])[:, None])


def _model():
    torch.manual_seed(0)
    model = MoCo(backbone="small_conv", backbone_kwargs={"width": 8}, queue_size=32, projection_dim=8, shuffle_bn=False)
    return model.eval()  # running-statistics batch norm: the per-sample maths equals one process on the whole batch


def _batch():
    generator = torch.Generator().manual_seed(7)
    views = [torch.randn(2 * BATCH, 3, 16, 16, generator=generator) for _ in range(2)]
    return views, torch.arange(2 * BATCH) % 10


def _moco_step_worker(rank, world_size, out_path):
    (view_a, view_b), labels = _batch()
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    model = _model()
    loss = model.training_step(((view_a[local], view_b[local]), labels[local]), 0)
    info_nce = loss - model.online_probe_step(model.backbone(view_a[local]), labels[local])
    result = {
        "losses": gather(info_nce.detach().reshape(1)),
        "queues": gather(model.queue.keys.unsqueeze(0)),
        "pointers": gather(model.queue.pointer.reshape(1)),
    }
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_after_one_step_both_ranks_hold_the_same_queue_and_the_single_process_loss(tmp_path):
    run_on_two_processes(_moco_step_worker, str(tmp_path / "moco.pt"))
    result = torch.load(tmp_path / "moco.pt")

    (view_a, view_b), labels = _batch()
    single = _model()
    with torch.no_grad():
        initial_queue = single.queue.keys.clone()
        keys = single.key_projector(single.key_backbone(view_b))
        expected_loss = single.criterion(single.projector(single.backbone(view_a)), keys, initial_queue)

    assert result["losses"].mean().item() == pytest.approx(expected_loss.item(), rel=1e-5)
    assert torch.equal(result["queues"][0], result["queues"][1])
    torch.testing.assert_close(result["queues"][0][: 2 * BATCH], keys)
    torch.testing.assert_close(result["queues"][0][2 * BATCH :], initial_queue[2 * BATCH :])
    assert result["pointers"].tolist() == [2 * BATCH, 2 * BATCH]
