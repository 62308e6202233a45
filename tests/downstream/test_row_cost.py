"""The report's cost of each row: parameter counts by hand, a timing that leaves the network as it was."""

import torch

from downstream.representations import Pixels
from downstream.row_cost import cost_table, measure, parameter_count
from selfsup.backbones import build_backbone
from selfsup.classical.dictionary import SparseCodingEncoder


def test_parameter_counts_by_hand():
    network = build_backbone("small_conv", width=4)
    # Four conv3x3 stages without bias (3->4, 4->8, 8->16, 16->32) and a BN (weight, bias) after each.
    by_hand = 9 * (3 * 4 + 4 * 8 + 8 * 16 + 16 * 32) + 2 * (4 + 8 + 16 + 32)
    assert parameter_count(network) == by_hand
    atoms = torch.nn.functional.normalize(torch.randn(5, 27), dim=1)
    encoder = SparseCodingEncoder(atoms, patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    assert parameter_count(encoder) == 5 * 27
    assert parameter_count(Pixels(8)) == 0


def test_measure_leaves_mode_and_weights_alone():
    network = build_backbone("small_conv", width=4).train()
    before = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    cost = measure(network, image_size=16, device=torch.device("cpu"))
    assert cost.images_per_second > 0 and cost.parameters == parameter_count(network)
    assert network.training
    assert all(torch.equal(before[name], tensor) for name, tensor in network.state_dict().items())


def test_cost_table_lists_every_row():
    lines = cost_table({"a": measure(Pixels(8), 8, torch.device("cpu"))}, torch.device("cpu"))
    assert (
        lines[0].startswith("**Cost of each row**")
        and "one CPU thread" in lines[0]
        and lines[-1].startswith("| a | 0 | ")
    )


def test_measure_on_a_cpu_times_one_thread_and_restores_the_thread_count():
    threads = torch.get_num_threads()
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, images):
            seen.append(torch.get_num_threads())
            return images

    measure(Probe(), image_size=8, device=torch.device("cpu"))
    assert set(seen) == {1} and torch.get_num_threads() == threads
