"""The U²-Net and U²-NetP networks (Qin et al., 2020), written from the paper and the published
layer layout so that the official checkpoints load with ``strict=True``.

Every module and attribute name below is part of the checkpoint format: renaming one breaks
loading of ``u2net.pth``, ``u2netp.pth`` and ``u2net_human_seg.pth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    """3x3 convolution, batch norm, ReLU; padding equals dilation so the size is kept."""

    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of height ``depth`` (RSU7..RSU4): an encoder of ``depth - 1`` convolutions
    with 2x2 max-pooling between the first ``depth - 2``, a dilated bottom, and a decoder that
    concatenates each skip and upsamples to its size. Returns decoder output + input projection.
    """

    def __init__(self, depth: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth = depth
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for i in range(2, depth):
            setattr(self, f"rebnconv{i}", REBNCONV(mid_ch, mid_ch))
        setattr(self, f"rebnconv{depth}", REBNCONV(mid_ch, mid_ch, dirate=2))
        for i in range(depth - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(mid_ch * 2, mid_ch))
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        skips = [self.rebnconv1(hxin)]
        for i in range(2, self.depth):
            skips.append(getattr(self, f"rebnconv{i}")(self.pool(skips[-1])))
        hx = getattr(self, f"rebnconv{self.depth}")(skips[-1])
        for i in range(self.depth - 1, 1, -1):
            hx = getattr(self, f"rebnconv{i}d")(torch.cat((hx, skips[i - 1]), 1))
            hx = _upsample_like(hx, skips[i - 2])
        return self.rebnconv1d(torch.cat((hx, skips[0]), 1)) + hxin


class RSU4F(nn.Module):
    """RSU4 without pooling: dilations 1, 2, 4, 8 keep the resolution (the coarsest stages)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, dirate=2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, dirate=4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, dirate=8)
        self.rebnconv3d = REBNCONV(mid_ch * 2, mid_ch, dirate=4)
        self.rebnconv2d = REBNCONV(mid_ch * 2, mid_ch, dirate=2)
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        return self.rebnconv1d(torch.cat((hx2d, hx1), 1)) + hxin


# (in, mid, out) per stage: stage1..stage6, then stage5d..stage1d.
_U2NET_CHANNELS = {
    "encoder": [(3, 32, 64), (64, 32, 128), (128, 64, 256), (256, 128, 512), (512, 256, 512),
                (512, 256, 512)],
    "decoder": [(1024, 256, 512), (1024, 128, 256), (512, 64, 128), (256, 32, 64), (128, 16, 64)],
    "side": [64, 64, 128, 256, 512, 512],
}
_U2NETP_CHANNELS = {
    "encoder": [(3, 16, 64)] + [(64, 16, 64)] * 5,
    "decoder": [(128, 16, 64)] * 5,
    "side": [64] * 6,
}


def _dtype(module: nn.Module) -> torch.dtype:
    """The number format ``module``'s weights are in (see :func:`lowered`)."""
    return next(module.parameters()).dtype


def _decoder(stage: nn.Module, deeper: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """A decoder stage on the deeper stage's output enlarged to its skip, concatenated with the
    skip; in the stage's own number format from the enlarging on."""
    dtype = _dtype(stage)
    skip = skip.to(dtype)
    return stage(torch.cat((_upsample_like(deeper.to(dtype), skip), skip), 1))


# Stages kept in float32 when the network is lowered to bfloat16 (:func:`lowered`). Measured on
# the U-2-Net authors' outputs (18 photos, median of the per-photo mean absolute differences):
# float32 0.45 levels of 255; all bfloat16 1.65; bfloat16 with the heads in float32 1.50, with
# stage3d too 1.49, with stage2d (160 px) and the heads in float32 0.56, at 20 % of the forward
# pass's time over all bfloat16 (scripts in the README's "Measured").
FLOAT32_ISLANDS = ("stage2d", "outconv", *(f"side{i}" for i in range(1, 7)))


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold each REBNCONV's batch norm into its convolution (inference only; the same function
    up to rounding): one pass less over every activation. Changes ``net`` in place."""
    for module in net.modules():
        if isinstance(module, REBNCONV) and isinstance(module.bn_s1, nn.BatchNorm2d):
            module.conv_s1 = torch.nn.utils.fusion.fuse_conv_bn_eval(module.conv_s1,
                                                                     module.bn_s1)
            module.bn_s1 = nn.Identity()
    return net


def lowered(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``net`` (in float32, changed in place) with its weights in ``dtype``: float16 whole,
    bfloat16 but for :data:`FLOAT32_ISLANDS`. Activations follow each stage's weights: every
    stage casts what it is given to its own format."""
    for name, child in net.named_children():
        if not (dtype == torch.bfloat16 and name in FLOAT32_ISLANDS):
            child.to(dtype)
    return net


class _U2NetBase(nn.Module):
    """Six encoder stages, five decoder stages, six side outputs fused by a 1x1 convolution.

    ``forward`` returns seven sigmoid maps at input size, the fused ``d0`` first, then ``d1..d6``.
    """

    def __init__(self, channels: dict) -> None:
        super().__init__()
        enc, dec, side = channels["encoder"], channels["decoder"], channels["side"]
        self.stage1 = RSU(7, *enc[0])
        self.pool12 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage2 = RSU(6, *enc[1])
        self.pool23 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage3 = RSU(5, *enc[2])
        self.pool34 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage4 = RSU(4, *enc[3])
        self.pool45 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage5 = RSU4F(*enc[4])
        self.pool56 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage6 = RSU4F(*enc[5])
        self.stage5d = RSU4F(*dec[0])
        self.stage4d = RSU(4, *dec[1])
        self.stage3d = RSU(5, *dec[2])
        self.stage2d = RSU(6, *dec[3])
        self.stage1d = RSU(7, *dec[4])
        for i, ch in enumerate(side, start=1):
            setattr(self, f"side{i}", nn.Conv2d(ch, 1, 3, padding=1))
        self.outconv = nn.Conv2d(6, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hx1 = self.stage1(x.to(_dtype(self.stage1)))
        hx2 = self.stage2(self.pool12(hx1))
        hx3 = self.stage3(self.pool23(hx2))
        hx4 = self.stage4(self.pool34(hx3))
        hx5 = self.stage5(self.pool45(hx4))
        hx6 = self.stage6(self.pool56(hx5))

        hx5d = _decoder(self.stage5d, hx6, hx5)
        hx4d = _decoder(self.stage4d, hx5d, hx4)
        hx3d = _decoder(self.stage3d, hx4d, hx3)
        hx2d = _decoder(self.stage2d, hx3d, hx2)
        hx1d = _decoder(self.stage1d, hx2d, hx1)

        return self._heads((hx1d, hx2d, hx3d, hx4d, hx5d, hx6))

    def _heads(self, features: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # In bfloat16 the six 1-channel heads, their fusion and the sigmoids stay in float32:
        # a sliver of the work, and a bfloat16 logit's sigmoid comes in steps of 1/256 near 1,
        # which the min-max normalisation of the output then stretches.
        dtype = _dtype(self.side1)
        features = tuple(f.to(dtype) for f in features)
        sides = [self.side1(features[0])]
        for i, feat in enumerate(features[1:], start=2):
            sides.append(_upsample_like(getattr(self, f"side{i}")(feat), sides[0]))
        d0 = self.outconv(torch.cat(sides, 1))
        return tuple(torch.sigmoid(d) for d in (d0, *sides))


class U2NET(_U2NetBase):
    """The full model (44.0 M parameters): checkpoints ``u2net.pth`` and ``u2net_human_seg.pth``."""

    def __init__(self) -> None:
        super().__init__(_U2NET_CHANNELS)


class U2NETP(_U2NetBase):
    """The small model (1.13 M parameters): checkpoint ``u2netp.pth``."""

    def __init__(self) -> None:
        super().__init__(_U2NETP_CHANNELS)
