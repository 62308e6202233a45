"""CPC across two processes: half the batch on each rank gives the single-process loss and gradients.

The candidates of every query are the patches of the global batch, gathered with gradients,
so each rank's loss is the single-process loss of its own queries; DDP averages the ranks'
gradients, which then equal the gradient of the whole batch on one process.
"""

import math

import pytest
import torch

from selfsup.distributed import gather
from selfsup.methods import CPC
from tests.helpers import run_on_two_processes

BATCH, GRID = 4, 3  # per rank: 4 images x 9 patches


def _model():
    torch.manual_seed(0)
    model = CPC(
        backbone="small_conv",
        backbone_kwargs={"width": 8},
        grid_size=GRID,
        patch_size=8,
        patch_stride=4,
        prediction_steps=2,
        target_dim=8,
        context_hidden_dim=8,
        context_layers=2,
    )
    return model.eval()  # running-statistics batch norm: the per-patch maths does not depend on the batch


def _images():
    return torch.randn(2 * BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(7))


def _gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for name, p in model.named_parameters() if not name.startswith("online_probe")])


def _worker(rank, world_size, out_path):
    model = _model()
    loss, logs = model.cpc_objective(_images()[rank * BATCH : (rank + 1) * BATCH])
    loss.backward()
    result = {
        "losses": gather(loss.detach().reshape(1)),
        "log_candidates": gather((logs["mi_k1"] + logs["loss_k1"]).reshape(1)),
        "gradients": gather(_gradients(model).unsqueeze(0)),
    }
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_two_ranks_with_half_the_batch_each_give_the_single_process_loss_and_gradients(tmp_path):
    run_on_two_processes(_worker, str(tmp_path / "cpc.pt"))
    result = torch.load(tmp_path / "cpc.pt")

    single = _model()
    loss, _ = single.cpc_objective(_images())
    loss.backward()

    assert result["losses"].mean().item() == pytest.approx(loss.item(), rel=1e-5)
    assert not torch.allclose(result["losses"][0], result["losses"][1])  # each rank scores its own queries
    candidates = 2 * BATCH * GRID * GRID  # the global batch's patches, not one rank's
    torch.testing.assert_close(result["log_candidates"], torch.full((2,), math.log(candidates)))
    torch.testing.assert_close(result["gradients"].mean(dim=0), _gradients(single), rtol=1e-4, atol=1e-6)
