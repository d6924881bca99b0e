"""What one weighted projection computes (model.md sec. 10), batched over circuits: the operators of
prospective networks, and the convolutions of convolutional microcircuits.

Rates and errors travel flat, [circuit, batch, neuron], in the order (channel, row, column) of the
population's ``shape``. A projection first pools its source's rates (optional, prospective networks),
then applies its weights: ``dense`` W [circuit, post, pre] (a shaped source is read flattened),
``conv`` a shared kernel [circuit, target channels, source channels, k, k], or ``conv`` transposed
(:class:`ConvTranspose`, a kernel [circuit, source channels, target channels, k, k] applied as the
transpose of its convolution). Convolutions of all circuits run as one grouped convolution (groups =
circuits) over the batch.

Every operator has the three maps the dynamics need:

    forward(W, p)        basal input W p of the target area               [circuit, batch, post]
    backward(B, e)       B^T e: the error carried down (W^T, or a fixed B) [circuit, batch, pooled pre]
    weight_update(e, p)  mean over the batch of e p^T, summed over the positions of a shared kernel,
                         W's shape with the circuit first

and a pooling stage with ``pool`` (rates -> pooled rates, remembering the window maxima) and
``unpool`` (an error on the pooled rates -> the error on the source's positions: to the selected
position only for ``max``, spread evenly over the window for ``average``; zero on positions no
window covers). ``backward`` and ``unpool`` are the exact transposes of ``forward`` and ``pool``
(tests compare them with unfolded dense matrices and with autograd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from microcircuit.circuit import image_shape

if TYPE_CHECKING:
    from microcircuit.circuit import Circuit


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions along one axis after a convolution: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class Pooling:
    """Pooling of a [channels, height, width] source over size x size windows with stride size."""

    kind: str  # "max" or "average"
    size: int
    source: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.source
        return (c, h // self.size, w // self.size)

    def pool(self, rate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pooled rates [circuit, batch, pooled size] and (max) the selected positions."""
        n_c, n_b = rate.shape[:2]
        x = rate.reshape(n_c * n_b, *self.source)
        if self.kind == "max":
            y, indices = F.max_pool2d(x, self.size, return_indices=True)
        else:
            y, indices = F.avg_pool2d(x, self.size), None
        return y.reshape(n_c, n_b, -1), indices

    def unpool(self, error: torch.Tensor, indices: torch.Tensor | None) -> torch.Tensor:
        """The transpose of :meth:`pool`: [circuit, batch, pooled size] -> [circuit, batch, source size]."""
        n_c, n_b = error.shape[:2]
        c, h, w = self.source
        e = error.reshape(n_c * n_b, *self.shape)
        if self.kind == "max":
            full = F.max_unpool2d(e, indices, self.size, output_size=(h, w))
        else:
            spread = e.repeat_interleave(self.size, dim=2).repeat_interleave(self.size, dim=3) / self.size**2
            full = F.pad(spread, (0, w - spread.shape[3], 0, h - spread.shape[2]))
        return full.reshape(n_c, n_b, -1)


class Operator:
    """The weights of one projection: see the module docstring. ``pre_size`` is the (pooled) input size."""

    weight_shape: tuple[int, ...]
    pre_size: int
    post_size: int

    def forward(self, weights: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, weights: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def weight_update(self, error: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def bias_size(self) -> int:
        """Biases of the target: one per neuron (dense), one per channel (conv)."""
        return self.post_size

    def expand_bias(self, bias: torch.Tensor) -> torch.Tensor:
        """[circuit, bias size] -> [circuit, 1, post], to add to the basal input."""
        return bias[:, None, :]

    def bias_update(self, error: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of e, summed over the positions of each channel: [circuit, bias size]."""
        return error.mean(dim=1)


class Dense(Operator):
    """W [circuit, post, pre]: a dense projection (a shaped source is read flattened)."""

    def __init__(self, pre_size: int, post_size: int):
        self.pre_size, self.post_size = pre_size, post_size
        self.weight_shape = (post_size, pre_size)

    def forward(self, weights, pre):
        return torch.bmm(pre, weights.transpose(1, 2))

    def backward(self, weights, error):
        return torch.bmm(error, weights)

    def weight_update(self, error, pre):
        return torch.bmm(error.transpose(1, 2), pre) / error.shape[1]


class Conv(Operator):
    """A shared kernel [circuit, out channels, in channels, kernel, kernel] between shaped areas."""

    def __init__(self, source: tuple[int, int, int], out_channels: int, kernel: int, stride: int, padding: int):
        c, h, w = source
        self.source = source
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.out_shape = (out_channels, conv_output_size(h, kernel, stride, padding),
                          conv_output_size(w, kernel, stride, padding))
        self.weight_shape = (out_channels, c, kernel, kernel)
        self.pre_size, self.post_size = c * h * w, math.prod(self.out_shape)
        # rows and columns a transposed convolution would drop when (size + 2p - k) is not a multiple of the stride
        self.output_padding = tuple(size - ((out - 1) * stride - 2 * padding + kernel)
                                    for size, out in zip((h, w), self.out_shape[1:], strict=True))

    def _images(self, flat: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """[circuit, batch, C*H*W] -> [batch, circuit*C, H, W] (the grouped-convolution layout)."""
        n_c, n_b = flat.shape[:2]
        return flat.reshape(n_c, n_b, *shape).transpose(0, 1).reshape(n_b, n_c * shape[0], *shape[1:])

    def _flat(self, images: torch.Tensor, n_c: int) -> torch.Tensor:
        """[batch, circuit*C, H, W] -> [circuit, batch, C*H*W]."""
        n_b = images.shape[0]
        return images.reshape(n_b, n_c, -1).transpose(0, 1)

    def forward(self, weights, pre):
        n_c = weights.shape[0]
        y = F.conv2d(self._images(pre, self.source), weights.reshape(-1, *self.weight_shape[1:]),
                     stride=self.stride, padding=self.padding, groups=n_c)
        return self._flat(y, n_c)

    def backward(self, weights, error):
        n_c = weights.shape[0]
        x = F.conv_transpose2d(self._images(error, self.out_shape), weights.reshape(-1, *self.weight_shape[1:]),
                               stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                               groups=n_c)
        return self._flat(x, n_c)

    def weight_update(self, error, pre):
        n_c, n_b = error.shape[:2]
        # the weight gradient of the grouped convolution: sum over batch and positions of e x patch
        dw = torch.nn.grad.conv2d_weight(self._images(pre, self.source), (n_c * self.weight_shape[0],
                                         *self.weight_shape[1:]), self._images(error, self.out_shape),
                                         stride=self.stride, padding=self.padding, groups=n_c)
        return dw.reshape(n_c, *self.weight_shape) / n_b

    @property
    def bias_size(self) -> int:
        return self.out_shape[0]

    def expand_bias(self, bias):
        return bias.repeat_interleave(self.out_shape[1] * self.out_shape[2], dim=1)[:, None, :]

    def bias_update(self, error):
        n_c, n_b = error.shape[:2]
        return error.reshape(n_c, n_b, self.out_shape[0], -1).sum(dim=3).mean(dim=1)

    def unfolded(self, weights: torch.Tensor) -> torch.Tensor:
        """The equivalent dense matrices [circuit, post, pre] (for tests and analyses; large)."""
        n_c = weights.shape[0]
        eye = torch.eye(self.pre_size, dtype=weights.dtype, device=weights.device)
        columns = self.forward(weights, eye.expand(n_c, *eye.shape))  # row j: the answer to unit input j
        return columns.transpose(1, 2)


class ConvTranspose(Operator):
    """The transposed convolution of a kernel [source channels, target channels, k, k]: the projection
    from an area back down to the area whose convolution it mirrors (a microcircuit's top-down and
    interneuron-to-apical weights, model.md sec. 10). ``conv`` is that forward convolution, from the
    target's shape to the source's."""

    def __init__(self, conv: Conv):
        self.conv = conv
        self.weight_shape = conv.weight_shape
        self.pre_size, self.post_size = conv.post_size, conv.pre_size

    def forward(self, weights, pre):
        return self.conv.backward(weights, pre)

    def backward(self, weights, error):
        return self.conv.forward(weights, error)

    def weight_update(self, error, pre):
        return self.conv.weight_update(pre, error)  # sum over positions of post x pre, in the kernel's layout


def operator_of(circuit: Circuit, projection: str) -> tuple[Operator, Pooling | None]:
    """The operator and pooling of a weighted projection (dense, convolution or transposed convolution)."""
    q = circuit.projections[projection]
    source, target = circuit.populations[q.source], circuit.populations[q.target]
    pooling = None
    pre_shape = image_shape(source.shape)
    if q.pool is not None:
        pooling = Pooling(q.pool.kind, q.pool.size, pre_shape)
        pre_shape = pooling.shape
    if q.conv is None:
        return Dense(math.prod(pre_shape), target.size), pooling
    if q.conv.transposed:
        forward = Conv(image_shape(target.shape), pre_shape[0], q.conv.kernel, q.conv.stride, q.conv.padding)
        return ConvTranspose(forward), pooling
    return Conv(pre_shape, image_shape(target.shape)[0], q.conv.kernel, q.conv.stride, q.conv.padding), pooling
