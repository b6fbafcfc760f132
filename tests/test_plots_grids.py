"""vaelab.plots.grids: the reconstruction grid labels blocks of (input, reconstruction) pairs."""

from __future__ import annotations

import torch

from vaelab.plots.grids import reconstruction_grid, upscale_factor


def test_reconstruction_grid_labels_blocks_of_pairs_and_pads_the_last():
    class HalfGrey:  # stands in for a VAE: reconstructions are inputs × 0.5
        def reconstruct(self, x, labels=None):  # noqa: ARG002 (the interface's signature)
            return 0.5 * x

    inputs = torch.ones(20, 1, 28, 28)  # 8 + 8 + 4 pairs
    grid = reconstruction_grid(HalfGrey(), inputs)
    side = upscale_factor(28) * 28 + 2 * 4  # an upscaled digit and its padding
    assert grid.shape[0] == 3
    assert grid.shape[1] == 6 * side
    rows = grid[0, :: side // 2][1::2]  # the middle line of each of the 6 rows
    digits = rows[:, -side // 2]  # in the last column: only full blocks reach it
    assert digits.tolist() == [1.0, 0.5, 1.0, 0.5, 1.0, 1.0]  # the 4-pair block is padded white
    label_pixels = grid[0, :, :8]  # the label text starts 8 px in
    assert label_pixels.min() == 1.0  # the label column starts white
