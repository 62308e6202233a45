"""NT-Xent on two processes equals NT-Xent on the concatenated batch in one process."""

import pytest
import torch

from selfsup.distributed import gather
from selfsup.losses import NTXentLoss
from tests.helpers import run_on_two_processes

TEMPERATURE = 0.2


def _rank_loss_and_grads(rank, world_size, z_a, z_b, out_path):
    local = z_a.shape[0] // world_size
    part_a = z_a[rank * local : (rank + 1) * local].clone().requires_grad_()
    part_b = z_b[rank * local : (rank + 1) * local].clone().requires_grad_()
    loss = NTXentLoss(TEMPERATURE)(part_a, part_b)
    loss.backward()
    losses = gather(loss.detach().reshape(1))
    grads_a, grads_b = gather(part_a.grad), gather(part_b.grad)
    if rank == 0:
        torch.save({"losses": losses, "grad_a": grads_a, "grad_b": grads_b}, out_path)


@pytest.mark.slow
def test_gathered_loss_and_gradients_equal_single_process(tmp_path):
    torch.manual_seed(0)
    z_a, z_b = torch.randn(8, 5), torch.randn(8, 5)
    out_path = tmp_path / "ddp.pt"
    run_on_two_processes(_rank_loss_and_grads, z_a, z_b, str(out_path))
    result = torch.load(out_path)

    single_a, single_b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    single_loss = NTXentLoss(TEMPERATURE)(single_a, single_b)
    single_loss.backward()

    # Each rank averages over its own 2N/2 anchors; DDP averages the ranks' gradients.
    assert result["losses"].mean().item() == pytest.approx(single_loss.item(), rel=1e-6)
    world_size = 2
    torch.testing.assert_close(result["grad_a"] / world_size, single_a.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(result["grad_b"] / world_size, single_b.grad, rtol=1e-5, atol=1e-7)
    # Without gathering, each rank would see only its own negatives: a different number.
    criterion = NTXentLoss(TEMPERATURE)
    local_only = (criterion(z_a[:4], z_b[:4]) + criterion(z_a[4:], z_b[4:])) / 2
    assert abs(local_only.item() - single_loss.item()) > 1e-2
