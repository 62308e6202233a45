"""The context network is causal: c_{i,j} depends on the rows <= i of the encodings, never on a row below."""

import pytest
import torch

from selfsup.components.context_network import ContextNetwork

BATCH, DIM, ROWS, COLS = 2, 6, 5, 4


def _network(num_layers: int = ROWS) -> ContextNetwork:
    torch.manual_seed(0)
    return ContextNetwork(DIM, hidden_dim=8, num_layers=num_layers).eval()


def _encodings() -> torch.Tensor:
    return torch.randn(BATCH, DIM, ROWS, COLS, generator=torch.Generator().manual_seed(1)).abs()


@pytest.mark.parametrize("row", range(ROWS))
def test_changing_a_row_leaves_every_row_above_exactly_unchanged_and_changes_it_and_those_below(row):
    network, z = _network(), _encodings()
    changed = z.clone()
    changed[:, :, row] = torch.rand(BATCH, DIM, COLS, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        before, after = network(z), network(changed)
    assert before.shape == (BATCH, DIM, ROWS, COLS)
    assert torch.equal(after[:, :, :row], before[:, :, :row])
    for below in range(row, ROWS):
        assert not torch.equal(after[:, :, below], before[:, :, below]), below


def test_the_gradient_of_a_context_row_vanishes_on_every_row_below_it():
    network, z = _network(), _encodings().requires_grad_()
    for row in range(ROWS):
        (gradient,) = torch.autograd.grad(network(z)[:, :, row].sum(), z)
        assert torch.count_nonzero(gradient[:, :, row + 1 :]) == 0
        assert torch.count_nonzero(gradient[:, :, row]) > 0


def test_each_block_reaches_one_row_further_up():
    network, z = _network(num_layers=1), _encodings()
    changed = z.clone()
    changed[:, :, 0] += 1.0
    with torch.no_grad():
        before, after = network(z), network(changed)
    assert not torch.equal(after[:, :, 1], before[:, :, 1])  # row 1 sees row 0 through the (2 x 1) convolution
    assert torch.equal(after[:, :, 2:], before[:, :, 2:])  # one block sees no farther than one row up


def test_sizes_below_one_are_refused():
    with pytest.raises(ValueError, match="ContextNetwork needs"):
        ContextNetwork(4, hidden_dim=0)
