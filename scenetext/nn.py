"""Building blocks shared by the detector and the recogniser."""

from __future__ import annotations

from torch import nn


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + optional ReLU; :func:`fold_batchnorm` merges the BN.

    `padding` defaults to "same" for odd kernels (``dilation * (kernel // 2)``)."""

    def __init__(self, cin: int, cout: int, kernel=3, stride=1, padding=None, dilation: int = 1,
                 groups: int = 1, relu: bool = True):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm of a :class:`ConvBN` into its conv, in place (same outputs,
    one pass less over memory). Use on inference models only."""
    for module in model.modules():
        if isinstance(module, ConvBN) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.conv, module.bn
            scale = bn.weight / (bn.running_var + bn.eps).sqrt()
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, groups=conv.groups, bias=True)
            fused.weight.data = conv.weight.data * scale[:, None, None, None]
            fused.bias.data = bn.bias.data - bn.running_mean * scale
            module.conv, module.bn = fused, nn.Identity()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
