"""The speed switches change the memory layout, not the maths."""

import torch

from selfsup.methods import SimCLR


def _simclr(**switches):
    torch.manual_seed(0)
    return SimCLR(backbone="small_conv", backbone_kwargs={"width": 8}, projection_dim=16, **switches)


def test_channels_last_gives_the_same_loss_and_gradients_in_nhwc():
    plain, nhwc = _simclr(), _simclr(channels_last=True)
    nhwc.apply_speed_switches()
    convolutions = [m for m in nhwc.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions)
    images = torch.randn(2, 8, 3, 16, 16)
    losses = []
    for model in (plain, nhwc):
        loss = model.criterion(*(model.projector(model.backbone(view)) for view in images))
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[0], losses[1])
    for a, b in zip(plain.parameters(), nhwc.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)
    assert nhwc.backbone.forward_stages(images[0])[0].is_contiguous(memory_format=torch.channels_last)


def test_compiling_keeps_the_checkpoint_names():
    model = _simclr(compile_backbone=True)
    names = set(model.state_dict())
    model.apply_speed_switches()
    assert model.backbone._compiled_call_impl is not None
    assert set(model.state_dict()) == names
