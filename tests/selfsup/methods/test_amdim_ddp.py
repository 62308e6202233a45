"""AMDIM across two processes: half the batch on each rank gives the single-process loss and gradients.

The target maps of both views are gathered from every rank with gradients, so each rank's
NCE has the global batch's locations as negatives and is the single-process loss of its own
sources; DDP averages the ranks' gradients, which then equal the whole batch's on one process.
"""

import math

import pytest
import torch

from selfsup.distributed import gather
from selfsup.methods.amdim import AMDIM
from tests.helpers import run_on_two_processes

BATCH = 4  # per rank


def _model():
    torch.manual_seed(0)
    model = AMDIM(backbone="small_conv", backbone_kwargs={"width": 8}, embedding_dim=8, score_clip=2.0)
    return model.eval()  # running-statistics batch norm: the per-image maths does not depend on the batch


def _inputs():
    generator = torch.Generator().manual_seed(7)
    views = [torch.randn(2 * BATCH, 3, 16, 16, generator=generator) for _ in range(2)]
    source_locations = torch.randint(16, (2, 2 * BATCH), generator=generator)  # the 4x4 map's 5t5 sources
    return views, source_locations


def _gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for name, p in model.named_parameters() if not name.startswith("online_probe")])


def _worker(rank, world_size, out_path):
    (view_1, view_2), locations = _inputs()
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    model = _model()
    loss, logs, _ = model.amdim_objective(view_1[local], view_2[local], locations[:, local])
    loss.backward()
    result = {
        "losses": gather(loss.detach().reshape(1)),
        "log_candidates": gather(torch.stack([logs[f"mi_{p}"] + logs[f"nce_{p}"] for p in ("1t5", "1t7")])[None]),
        "gradients": gather(_gradients(model).unsqueeze(0)),
    }
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_two_ranks_with_half_the_batch_each_give_the_single_process_loss_and_gradients(tmp_path):
    run_on_two_processes(_worker, str(tmp_path / "amdim.pt"))
    result = torch.load(tmp_path / "amdim.pt")

    (view_1, view_2), locations = _inputs()
    single = _model()
    loss, _, _ = single.amdim_objective(view_1, view_2, locations)
    loss.backward()

    assert result["losses"].mean().item() == pytest.approx(loss.item(), rel=1e-5)
    assert not torch.allclose(result["losses"][0], result["losses"][1])  # each rank scores its own sources
    # Candidates: the positive and every location of the other 7 images of the global batch, not of one rank's 3.
    expected = torch.tensor([math.log(1 + 7 * 16), math.log(1 + 7 * 64)])
    torch.testing.assert_close(result["log_candidates"], expected.expand(2, 2))
    torch.testing.assert_close(result["gradients"].mean(dim=0), _gradients(single), rtol=1e-4, atol=1e-6)

    # With only its own half as negatives, a rank would compute another number.
    with torch.no_grad():
        halves = [
            single.amdim_objective(view_1[part], view_2[part], locations[:, part])[0]
            for part in (slice(0, BATCH), slice(BATCH, 2 * BATCH))
        ]
    assert abs((halves[0] + halves[1]).item() / 2 - loss.item()) > 1e-2
