"""Two pictures compared at the coarser one's own resolution, each made from its own pixels.

A half-size copy of a small meme is compared with its original at the copy's resolution
(`indexer.alignment`). Made from the pictures' grids (each enlarged or shrunk to 640-800 pixels
for keypoints), the copy was resampled three times over against its original's two (enlarged
to the grid and shrunk back), and a caption's 1-pixel outlines came out sharper on one than on
the other and differed as letters do: Grumpy Cat's white captions outlined in black measured
0.19-0.24 for every half-size copy, over the 0.1 a copy may differ by. Made here from the
pictures themselves in one step (area averaging, as a smaller copy is made), the copy's pixels
and its original's fall on one grid.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

SOURCE_SIDE = 1024  # pixels at most of a picture kept as it was given (`comparable`)
ROUNDING = 0.01  # sizes this near are one size: a grid's rounding, a transform's scale off by a hair


def comparable(img: Image.Image) -> Image.Image:
    """A picture as it is kept to compare: itself, or where it is larger than SOURCE_SIDE,
    shrunk by a whole factor (each pixel the mean of a square of them), so that a copy resized
    from it still falls on its pixels."""
    whole = -(-max(img.size) // SOURCE_SIDE)
    return img.convert("RGB").reduce(whole) if whole > 1 else img


def own_pixels(moving: tuple[np.ndarray, tuple], fixed: tuple[np.ndarray, tuple], transform: np.ndarray,
               detail: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Two pictures, each (its own pixels in grey, the shape of its grid), brought to `detail`
    of fixed's grid where one of them must be resized for that (a half-size copy against its
    original), each from its own pixels, and the transform between the two (from `transform`,
    moving's grid onto fixed's); None where both are at their own pixels there. Where moving,
    brought there, is fixed's size but for rounding (the whole picture resized), it is made that
    size exactly."""
    import cv2

    (moving_own, moving_grid), (fixed_own, fixed_grid) = moving, fixed
    sources = (moving_own, fixed_own)
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    sizes = [np.array(moving_grid[::-1]) * scale * detail, np.array(fixed_grid[::-1]) * detail]
    own = [_near(size, s.shape[::-1]) for size, s in zip(sizes, sources)]  # the coarser: its own pixels
    if all(own):
        return None
    sizes = [np.array(s.shape[::-1]) if mine else size for size, s, mine in zip(sizes, sources, own)]
    if _near(*sizes):  # the whole picture resized (a half-size copy): the finer made the coarser's size
        sizes = [sizes[0]] * 2 if own[0] else [sizes[1]] * 2
    moving_grey, fixed_grey = (s if tuple(size) == s.shape[::-1] else cv2.resize(
        s, tuple(int(v) for v in np.maximum(1, np.round(size))), interpolation=cv2.INTER_AREA)
        for size, s in zip(sizes, sources))
    # in corner coordinates (a pixel's centre at +0.5) a resize only scales: moving's picture
    # here -> its grid -> fixed's grid -> fixed's picture here
    to_corner, from_corner = np.array([[1, 0, .5], [0, 1, .5], [0, 0, 1]]), np.array([[1, 0, -.5], [0, 1, -.5], [0, 0, 1]])

    def scaled(to: tuple, of: tuple) -> np.ndarray:  # a picture's pixels onto another's (shapes)
        return np.diag([to[1] / of[1], to[0] / of[0], 1.0])

    chain = (from_corner @ scaled(fixed_grey.shape, fixed_grid) @ to_corner @ np.vstack([transform, [0, 0, 1]])
             @ from_corner @ scaled(moving_grid, moving_grey.shape) @ to_corner)
    return moving_grey, fixed_grey, chain[:2]


def _near(size: np.ndarray, other) -> bool:
    """Whether two sizes (width, height) are one but for rounding (ROUNDING)."""
    return bool(np.all(np.abs(np.asarray(size, float) - np.asarray(other, float)) <= ROUNDING * np.asarray(size)))
