"""MoCo v3 across two processes: half the batch on each rank gives the single-process loss and gradients.

The keys of both views are gathered from every rank, so each rank's queries are contrasted
with the keys of the whole global batch; DDP averages the ranks' gradients, which then
equal the whole batch's on one process.
"""

import pytest
import torch

from selfsup.distributed import all_gather_objects, gather, gather_with_grad
from selfsup.losses.moco_v3 import MoCoV3Loss
from selfsup.methods.moco_v3 import MoCoV3
from tests.helpers import run_on_two_processes

BATCH = 4  # per rank
TINY = dict(backbone="small_conv", backbone_kwargs={"width": 8}, projection_hidden_dim=32, projection_dim=16)


def _model():
    torch.manual_seed(0)
    model = MoCoV3(**TINY, prediction_hidden_dim=32, temperature=0.5)
    return model.eval()  # running-statistics batch norm: the per-image maths does not depend on the batch


def _views():
    generator = torch.Generator().manual_seed(7)
    return [torch.randn(2 * BATCH, 3, 16, 16, generator=generator) for _ in range(2)]


def _gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for name, p in model.named_parameters() if p.grad is not None])


def _worker(rank, world_size, out_path):
    view_1, view_2 = _views()
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    model = _model()
    loss, _ = model.moco_v3_objective(view_1[local], view_2[local])
    loss.backward()
    result = {"losses": gather(loss.detach().reshape(1)), "gradients": gather(_gradients(model).unsqueeze(0))}
    if rank == 0:
        torch.save(result, out_path)


@pytest.mark.slow
def test_two_ranks_with_half_the_batch_each_give_the_single_process_loss_and_gradients(tmp_path):
    run_on_two_processes(_worker, str(tmp_path / "moco_v3.pt"))
    result = torch.load(tmp_path / "moco_v3.pt")

    view_1, view_2 = _views()
    single = _model()
    loss, _ = single.moco_v3_objective(view_1, view_2)
    loss.backward()

    assert result["losses"].mean().item() == pytest.approx(loss.item(), rel=1e-5)
    assert not torch.allclose(result["losses"][0], result["losses"][1])  # each rank scores its own queries
    torch.testing.assert_close(result["gradients"].mean(dim=0), _gradients(single), rtol=1e-4, atol=1e-6)

    # With only its own half's keys, a rank would compute another number.
    with torch.no_grad():
        halves = [
            single.moco_v3_objective(view_1[part], view_2[part])[0] for part in (slice(0, BATCH), slice(BATCH, None))
        ]
    assert abs((halves[0] + halves[1]).item() / 2 - loss.item()) > 1e-2


def _ragged_worker(rank, world_size, out_path):
    queries = torch.randn(4 - rank, 8)
    messages = []
    for ragged in (lambda: MoCoV3Loss(0.2)(queries, queries), lambda: gather_with_grad(queries)):
        try:
            ragged()
            messages.append("")
        except ValueError as error:
            messages.append(str(error))
    messages = all_gather_objects(messages)  # per rank: the loss's message, the gather's
    if rank == 0:
        torch.save(messages, out_path)


@pytest.mark.slow
def test_ranks_holding_different_numbers_of_images_are_refused_rather_than_mislabelled(tmp_path):
    run_on_two_processes(_ragged_worker, str(tmp_path / "ragged.pt"))
    messages = torch.load(tmp_path / "ragged.pt")
    assert all("every rank must hold the same number of images" in loss for loss, _ in messages), messages
    assert all("same number of rows to gather with gradient" in gathered for _, gathered in messages), messages
