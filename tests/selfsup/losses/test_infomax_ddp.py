"""Deep InfoMax's MI terms on two processes equal the terms on the whole batch in one."""

import pytest
import torch

from selfsup.distributed import gather
from selfsup.losses.infomax import InfoMaxLoss
from tests.helpers import run_on_two_processes


def _rank_loss_and_grads(rank, world_size, estimator, queries, keys, out_path):
    local = keys.shape[0] // world_size
    part_queries = queries[rank * local : (rank + 1) * local].clone().requires_grad_()
    part_keys = keys[rank * local : (rank + 1) * local].clone().requires_grad_()
    loss, _ = InfoMaxLoss(estimator)(part_queries, part_keys)
    loss.backward()
    result = {
        "losses": gather(loss.detach().reshape(1)),
        "query_grads": gather(part_queries.grad),
        "key_grads": gather(part_keys.grad),
    }
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
@pytest.mark.parametrize("locations", [None, 3], ids=["global", "local"])
def test_negatives_come_from_all_ranks(tmp_path, estimator, locations):
    torch.manual_seed(0)
    batch, dim = 8, 5
    queries = torch.randn(batch, dim) if locations is None else torch.randn(batch, locations, dim)
    keys = torch.randn(batch, dim)
    out_path = tmp_path / "ddp.pt"
    run_on_two_processes(_rank_loss_and_grads, estimator, queries, keys, str(out_path))
    result = torch.load(out_path)

    single_queries, single_keys = queries.clone().requires_grad_(), keys.clone().requires_grad_()
    single_loss, _ = InfoMaxLoss(estimator)(single_queries, single_keys)
    single_loss.backward()

    # Each rank averages over its own rows; DDP averages the ranks' gradients.
    world_size = 2
    assert result["losses"].mean().item() == pytest.approx(single_loss.item(), rel=1e-6)
    torch.testing.assert_close(result["query_grads"] / world_size, single_queries.grad)
    torch.testing.assert_close(result["key_grads"] / world_size, single_keys.grad)
    # With only its own half as negatives, a rank would compute a different number.
    criterion = InfoMaxLoss(estimator)
    local_only = (criterion(queries[:4], keys[:4])[0] + criterion(queries[4:], keys[4:])[0]) / 2
    assert abs(local_only.item() - single_loss.item()) > 1e-3
