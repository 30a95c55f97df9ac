"""The architecture must match the official checkpoints' layout (MODELS.md facts)."""

from __future__ import annotations

import pytest
import torch

from mattectl.backends.u2net_arch import U2NET, U2NETP


@pytest.mark.parametrize(("cls", "params"), [(U2NET, 44_009_869), (U2NETP, 1_131_181)])
def test_parameter_count_and_state_dict_size(cls: type, params: int) -> None:
    net = cls()
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(net.state_dict()) == 798


def test_official_key_names_and_shapes() -> None:
    state = U2NET().state_dict()
    assert state["stage1.rebnconvin.conv_s1.weight"].shape == (64, 3, 3, 3)
    assert state["stage1.rebnconv7.conv_s1.weight"].shape == (32, 32, 3, 3)
    assert state["stage1.rebnconv6d.conv_s1.weight"].shape == (32, 64, 3, 3)
    assert state["stage5.rebnconv4.conv_s1.weight"].shape == (256, 256, 3, 3)
    assert state["stage5d.rebnconvin.conv_s1.weight"].shape == (512, 1024, 3, 3)
    assert state["stage1d.rebnconv1d.conv_s1.weight"].shape == (64, 32, 3, 3)
    assert state["side6.weight"].shape == (1, 512, 3, 3)
    assert state["outconv.weight"].shape == (1, 6, 1, 1)
    assert "stage1.rebnconvin.bn_s1.running_var" in state
    small = U2NETP().state_dict()
    assert small["stage2.rebnconvin.conv_s1.weight"].shape == (64, 64, 3, 3)
    assert small["stage1d.rebnconvin.conv_s1.weight"].shape == (64, 128, 3, 3)


def test_dilations_follow_the_published_layout() -> None:
    net = U2NETP()
    assert net.stage1.rebnconv7.conv_s1.dilation == (2, 2)
    assert net.stage1.rebnconv6.conv_s1.dilation == (1, 1)
    assert [getattr(net.stage5, f"rebnconv{i}").conv_s1.dilation[0] for i in (1, 2, 3, 4)] \
        == [1, 2, 4, 8]


def test_forward_returns_seven_maps_at_input_size() -> None:
    net = U2NETP().eval()
    with torch.inference_mode():
        outs = net(torch.rand(1, 3, 96, 72))
    assert len(outs) == 7
    for out in outs:
        assert out.shape == (1, 1, 96, 72)
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
