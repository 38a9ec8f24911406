"""Is this picture that picture? Align two images and measure how much of them differs.

A repost is its original re-encoded, resized, cropped or framed: once aligned (ORB keypoints
matched, a similarity transform fitted with RANSAC, or where keypoints fail on a small picture,
one picture slid over the other; where some difference is left, refined to a fraction of a
pixel by OpenCV's ECC), nearly every pixel agrees. Another meme of the same template aligns
just as well on the template, but its caption's letters differ. Measured on 1,007 rendered
real memes (see archive.likeness for the figures): every one of 4,032 altered copies measured
0, and pairs of one template with other captions at least 0.196. Two earlier measures let the two overlap: the
share of all pixels that differ (a word changed in a small caption is a small share of the
picture: copies reached 6%, such siblings started at 1.2%), and keypoints alone, whose
alignment is off by 2-3 pixels on some copies, so that their letters' edges count as strokes.
One comparison took 19 ms median, 32 ms p95 here (4,032 copies and 289 siblings, while an
indexer ran beside it). A pixel differs by more than half the contrast around it, from 20 grey
levels up to 50 (`_limits`): with 50 throughout, posts in grey type 70-140 levels from their
background (data/make_identity_set.py's `faint` style) differed from siblings a word apart by
under 0.05 in 263 of 495 pairs (seed 269) and were folded (4 false joins among its 18 such
memes); now in none of them (1 of seed 251's 494, at 0.049), and 4 of each set's pairs are
under 0.1, where every word counts.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from archive.likeness import BARELY

from .regrid import comparable, own_pixels

SIDE = 800  # pixels at most on the longer side, for both images (small captions need the detail)
MIN_SIDE = 640  # smaller pictures are enlarged to this: keypoints need it, and 1-px strokes survive
# Grey levels by which two aligned pixels differ to count as different: half the contrast around
# them (`_limits`: the range of grey levels within a pixel of them, in either picture), from
# FAINTEST up to PIXEL_DIFFERENCE. Dark type on white, or white on dark, is held to 50 levels, as
# far as JPEG at quality 30 and resampling ever move a copy; faint type (grey text 70-140 levels
# from its background, a muted theme) is held to half its own contrast: a flat 50 let a word
# changed in it through (the strokes of 12-16 px type, blurred, differ by 40-60 levels, mostly
# under 50).
PIXEL_DIFFERENCE = 50
FAINTEST = 20  # what JPEG at quality 30 leaves on a flat background
INK_SHARE = 0.5
AROUND = 3  # pixels: the square the contrast is measured in
PATCH = 24  # pixels: about a word of a small caption at SIDE
LETTER = PATCH // 2  # pixels: about a letter of 14 px type ("hates" / "dates": `likeness.MAX_LETTER_DIFFERENCE`)
CERTAIN = 0.6  # a difference this large before refining the alignment is never a copy's
# A site's mark (imgflip.com and the like) is pasted into a corner of a repost: differences in
# these corners (shares of the width and height) are left out where they are all there is, and
# OCR's words still decide (`archive.likeness.Caption.disagrees`).
CORNER = (0.3, 0.15)
# A picture enlarged by more than 1/COARSE (a small meme, a half-size copy) is compared at its
# own resolution, unblurred: its strokes are a pixel wide there. Others at the grid, lightly blurred.
COARSE = 0.6
COLOUR_CELL = 8  # grid pixels per cell of the colour comparison
# Grey levels (0-255, the largest of the three channels' differences) by which the median cell
# of two aligned pictures may differ: another background colour is another meme. Copies moved
# it by at most 7 (576 copies of real templates: JPEG q35 4, half size 6, crop 6, framed 7) and
# 5 (1,104 copies of two identity sets, JPEG q30); with 24, one flat colour's JPEG copy came 22
# from another flat colour with the same words (26 from its original) and joined it, and on
# another set two such colours 16 apart were one meme. Left: copies of fine saturated stripes
# (2-pixel red and blue, a helper review's) move by 14-20 and are another meme.
MAX_COLOUR_SHIFT = 12
DIFFERENT = 1.0  # what `difference` answers for pictures whose colours differ
# The share of a picture's shorter side by which ECC may move a corner of it (keypoints are off by
# a pixel or two): a refinement that strayed further, compared up to its own edge, would compare
# next to nothing and match.
MAX_REFINEMENT = 0.05
SLID = 0.9  # correlation of a picture slid over another, where keypoints fail, that aligns them


class Difference(float):
    """What `difference` measures, how much the corners it leaves out differ where they differ
    more (`corner`, 0 where they do not), and the share of each of the two pictures (the first
    given, the second) that the other covers once aligned (`overlap`: where the pixels were
    compared; a crop covers part of its original), and the resolution they were compared at, as a
    share of the grid's (`detail`: under 1 where the coarser of the two is smaller than the grid,
    a small meme or a half-size copy, whose words may differ by only a few pixels). Where one of
    the two was resized to compare them there, `own` is the same measure made from each
    picture's own pixels (`regrid.own_pixels`; None where not made). Compared on the grid,
    `letter` is the same measure over squares half as wide (LETTER), corners left out: about a
    letter of small type (where the value barely differs, `_letters_measured`; 0 elsewhere)."""

    corner: float = 0.0
    overlap: tuple[float, float] = (1.0, 1.0)
    detail: float = 1.0
    own: float | None = None
    letter: float = 0.0

    @classmethod
    def of(cls, value: float, corner: float, overlap: tuple[float, float] = (1.0, 1.0),
           detail: float = 1.0, own: float | None = None, letter: float = 0.0) -> "Difference":
        found = cls(value)
        found.corner = float(corner)
        found.overlap = overlap
        found.detail = float(detail)
        found.own = own
        found.letter = float(letter)
        return found


@dataclass
class Features:
    grey: np.ndarray
    keypoints: tuple
    descriptors: np.ndarray | None
    colour: np.ndarray | None = None  # the picture at 1/COLOUR_CELL of the grid, RGB
    detail: float = 1.0  # the picture's own pixels per grid pixel (under 1: enlarged)
    # the picture in grey as it was given (`regrid.comparable`), which pictures compared at a
    # small one's own resolution are made from (`regrid.own_pixels`)
    source: np.ndarray | None = None


def _resized(image: np.ndarray, scale: float, interpolation=None) -> np.ndarray:
    """`image` scaled by `scale` (area averaging when shrinking, as a smaller copy is made)."""
    import cv2

    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=interpolation)


def features(img: Image.Image) -> Features:
    """What `difference` compares of a picture: keypoints, the grid and the colours of the
    picture at the size indexing gives the image model (`model_input`), and the picture itself
    (`regrid.comparable`)."""
    import cv2

    from .imageio import model_input

    img = comparable(img)
    source = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    rgb = np.asarray(model_input(img).convert("RGB"))
    longest = max(rgb.shape[:2])
    scale = SIDE / longest if longest > SIDE else max(1.0, MIN_SIDE / longest)
    if scale != 1:
        rgb = _resized(rgb, scale)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    keypoints, descriptors = cv2.ORB_create(800).detectAndCompute(grey, None)
    if len(keypoints) < 200:  # a soft picture (small, enlarged): look for fainter corners too
        keypoints, descriptors = cv2.ORB_create(800, fastThreshold=4).detectAndCompute(grey, None)
    colour = _resized(rgb, 1 / COLOUR_CELL).astype(np.int16)
    return Features(grey, tuple(keypoints), descriptors, colour, min(1.0, 1 / scale), source)


def difference(a: Features, b: Features) -> Difference | None:
    """How much a and b differ once aligned: the share of differing pixels in the PATCH x PATCH
    square where most differ (0 to 1; DIFFERENT where their colours differ); None when the two
    cannot be aligned (too few matching keypoints, or too little overlap).

    The larger picture is brought onto the smaller one's grid (shrunk by area averaging first,
    as a smaller copy was made). Pictures whose colours differ are different. Where one of the
    two was enlarged by more than 1/COARSE (a small meme, a half-size copy), both are compared at
    that picture's own resolution, unblurred (where one was resized, also each made from its own
    pixels: `Difference.own`), with patches smaller in proportion, up to a pixel from the edge
    of the part they share (`_inside`: what is left of a line a crop cut through);
    otherwise at the grid, lightly blurred, a few pixels more from it. Each patch may shift by a
    pixel to fit (what is left of an alignment's error), so resampling and JPEG leave next to
    nothing while another word leaves letters, however thin or faint their strokes. One patch, not the whole
    picture, is what is measured: a word changed in a small caption is a small share of the
    picture but fills its patch; the corners, where sites paste marks, are measured apart and
    said to differ (`Difference.corner`) where they differ more than the rest. Keypoints sit on a
    coarse pyramid, so where the first alignment leaves a difference that a copy could show, it
    is refined (ECC) and measured again."""
    import cv2

    transform = _alignment(a, b)
    if transform is None:  # no alignment: only pictures of other colours can still be told apart
        return Difference(DIFFERENT) if _colours_apart(a, b) else None
    moving, fixed = a, b
    if abs(np.linalg.det(transform[:, :2])) > 1:  # a is the smaller picture: bring b onto it
        transform, moving, fixed = cv2.invertAffineTransform(transform), b, a
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    grid_transform = transform  # moving's own grid onto fixed's
    moving_grey, moving_detail = moving.grey, min(1.0, moving.detail / scale)
    if scale < 0.9:  # shrink with area averaging first, as a smaller copy was made, then align
        moving_grey = _resized(moving_grey, scale)
        transform = transform @ np.diag([1 / scale, 1 / scale, 1.0])
    fixed_grey = fixed.grey
    h, w = fixed_grey.shape
    covered = cv2.warpAffine(np.full_like(moving_grey, 255), transform, (w, h), flags=cv2.INTER_NEAREST)
    # the share of each picture the other covers (the moving one's own area, on fixed's grid)
    area = float(np.count_nonzero(covered))
    shares = (area / covered.size, min(1.0, area / (moving_grey.size * scale_to_fixed(transform))))
    overlap = shares[::-1] if moving is a else shares
    covered = cv2.erode(covered, np.ones((5, 5), np.uint8)) > 0
    if covered.mean() < 0.5:
        return None
    if _colour_shift(moving, fixed, grid_transform, covered) > MAX_COLOUR_SHIFT:
        return Difference(DIFFERENT)
    detail, own = min(moving_detail, fixed.detail), None
    if detail >= COARSE:
        found = _measured(moving_grey, fixed_grey, transform, covered, PATCH)
    else:  # compare at the coarser picture's own resolution, where neither is enlarged, up to the
        # edge of moving (`_inside`), with patches smaller in proportion: both pictures brought there
        # from the grid alike, and where one is resized, also each made from the picture itself
        to_coarse = np.diag([detail, detail, 1.0])
        transform = (to_coarse @ np.vstack([transform, [0, 0, 1]]) @ np.linalg.inv(to_coarse))[:2]
        patch = max(8, round(PATCH * detail))
        found = _measured(_resized(moving_grey, detail), _resized(fixed_grey, detail), transform, None, patch)
        resized = own_pixels((moving.source, moving.grey.shape), (fixed.source, fixed.grey.shape), grid_transform,
                             detail) if found > 0 else None
        if resized is not None:
            own = float(_measured(*resized, None, patch))
    return Difference.of(found, found.corner, overlap, detail, own, found.letter)


def _measured(moving: np.ndarray, fixed: np.ndarray, transform: np.ndarray, covered: np.ndarray | None,
              patch: int) -> Difference:
    """`_patch_difference` where `transform` puts moving, or where that leaves some difference
    that a copy could show, where ECC refines it to (the less of the two, and of their `letter`s)."""
    rough = _patch_difference(moving, fixed, transform, covered, patch)
    if not ((rough == 0 and not rough.corner) or rough > CERTAIN):
        refined = _refined(transform, moving, fixed)
        strayed = _moved(transform, refined, moving.shape) > MAX_REFINEMENT * min(moving.shape)
        if covered is not None or not strayed:
            again = _patch_difference(moving, fixed, refined, covered, patch)
            letters = [d.letter for d in (rough, again) if _letters_measured(d)]
            rough = min(rough, again)
            rough.letter = min(letters) if _letters_measured(rough) else 0.0  # the less of the two, too
    return rough


def _letters_measured(value: float) -> bool:
    """Whether a word-sized patch differing by `value` barely differs (where the rule looks at letters)."""
    return 0 < value < BARELY


def scale_to_fixed(transform: np.ndarray) -> float:
    """How much an area grows when `transform` (2 x 3, similarity) maps it."""
    return float(abs(np.linalg.det(transform[:, :2])))


def _alignment(a: Features, b: Features) -> np.ndarray | None:
    """The similarity transform taking a's grid onto b's, from matched keypoints, or where too
    few match, from sliding one picture over the other (`_slid`); None when neither finds it."""
    import cv2

    if a.descriptors is None or b.descriptors is None or len(a.keypoints) < 10 or len(b.keypoints) < 10:
        return _slid(a, b)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(a.descriptors, b.descriptors)
    if len(matches) < 10:
        return _slid(a, b)
    source = np.float32([a.keypoints[m.queryIdx].pt for m in matches])
    target = np.float32([b.keypoints[m.trainIdx].pt for m in matches])
    transform, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if transform is None or inliers is None or int(inliers.sum()) < 8:
        return _slid(a, b)
    return transform


def _slid(a: Features, b: Features) -> np.ndarray | None:
    """a's grid onto b's where keypoints fail (a small meme enlarged to the grid has soft corners
    that match at random: a 6% crop of a 250-px meme found 3 inliers of 35): the middle of one
    picture slid over the other (normalised correlation, at half the grid), at the scales a
    copy has (the same pixels, half or twice as many, or the whole onto the whole). None where
    no placement correlates at SLID or more (copies 0.98-0.99; another template 0.8)."""
    import cv2

    (ha, wa), (hb, wb) = a.grey.shape, b.grey.shape
    own = a.detail / b.detail  # a's grid pixels per b's, for pictures of the same pixels
    best: tuple[float, np.ndarray] | None = None
    for scale in {round(s, 3) for s in (own, own / 2, own * 2, wb / wa, hb / ha)}:
        moving, fixed, by = (a.grey, b.grey, scale) if scale <= 1 else (b.grey, a.grey, 1 / scale)
        small, field = _resized(moving, by / 2), _resized(fixed, 0.5)
        # the middle of the moving picture, small enough to slide a little inside the fixed one
        h = min(small.shape[0], field.shape[0]) - max(2, field.shape[0] // 25)
        w = min(small.shape[1], field.shape[1]) - max(2, field.shape[1] // 25)
        if h < 16 or w < 16:
            continue
        y, x = (small.shape[0] - h) // 2, (small.shape[1] - w) // 2
        found = cv2.matchTemplate(field, small[y:y + h, x:x + w], cv2.TM_CCOEFF_NORMED)
        _, value, _, (left, top) = cv2.minMaxLoc(found)
        if best is None or value > best[0]:
            transform = np.array([[by, 0, 2 * (left - x)], [0, by, 2 * (top - y)]], dtype=np.float64)
            best = (value, transform if scale <= 1 else cv2.invertAffineTransform(transform))
    return best[1] if best is not None and best[0] >= SLID else None


def _colours_apart(a: Features, b: Features) -> bool:
    """Whether two pictures' commonest colours (the median cell, channel by channel) are further
    apart than any copy's: the same words on another background colour."""
    if a.colour is None or b.colour is None:
        return False
    median = [np.median(f.colour.reshape(-1, 3), axis=0) for f in (a, b)]
    return float(np.abs(median[0] - median[1]).max()) > 2 * MAX_COLOUR_SHIFT


def _colour_shift(moving: Features, fixed: Features, transform: np.ndarray, covered: np.ndarray) -> float:
    """How far apart the colours of the two aligned pictures are: the median, over the cells
    both cover, of the largest channel difference (grey levels). A caption or a mark changes a
    few cells; another background colour or another photo changes most of them."""
    import cv2

    if moving.colour is None or fixed.colour is None:
        return 0.0
    to_cells = np.diag([1 / COLOUR_CELL, 1 / COLOUR_CELL, 1.0])
    h, w = fixed.colour.shape[:2]
    # moving's cells are of its own grid, which the transform maps onto fixed's
    shrink = moving.grey.shape[1] / max(1, moving.colour.shape[1])
    cell_transform = to_cells @ np.vstack([transform, [0, 0, 1]]) @ np.diag([shrink, shrink, 1.0])
    warped = cv2.warpAffine(moving.colour.astype(np.float32), cell_transform[:2], (w, h)).astype(np.int16)
    inside = cv2.resize(covered.astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA) > 0
    inside &= cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if not inside.any():
        return 0.0
    shift = np.abs(warped - fixed.colour).max(axis=2)
    return float(np.median(shift[inside]))


def _patch_difference(moving: np.ndarray, fixed: np.ndarray, transform: np.ndarray, covered: np.ndarray | None,
                      patch: int = PATCH, reach: int = 1) -> Difference:
    """`moving` brought onto `fixed` by `transform`: the share of differing pixels in the
    `patch` x `patch` square where most differ, over the `covered` part of `fixed` (None: up to a
    pixel from moving's edge as this transform places it, `_inside`). Each patch may
    be shifted by up to `reach` pixels to fit best (what is left of an alignment's error is a
    shift of the whole neighbourhood; a changed letter cannot be shifted away). A pixel differs
    where the two differ by more than `_limits` allows there. The picture's CORNERs, where sites
    paste their marks, are measured apart (`Difference.corner`), held to PIXEL_DIFFERENCE."""
    import cv2

    h, w = fixed.shape
    if patch == PATCH:  # at full resolution JPEG and resampling leave pixel-sized noise: blur it
        moving, fixed = cv2.GaussianBlur(moving, (3, 3), 0), cv2.GaussianBlur(fixed, (3, 3), 0)
    if covered is None:
        covered = _inside(moving.shape, transform, (h, w))
    # past moving's edge, its edge repeated: a patch shifted by `reach` there compares no black
    warped = cv2.warpAffine(moving, transform, (w, h), borderMode=cv2.BORDER_REPLICATE)
    limits = _limits(warped, fixed)
    warped, still = warped.astype(np.int16), fixed.astype(np.int16)
    padded = cv2.copyMakeBorder(warped, reach, reach, reach, reach, cv2.BORDER_REPLICATE)
    # the corners of the picture both show: inside a frame, where the other was pasted
    rows, cols = np.nonzero(covered.any(axis=1))[0], np.nonzero(covered.any(axis=0))[0]
    top, bottom, left, right = (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) if rows.size else (0, h, 0, w)
    corners = np.zeros_like(covered)
    cw, ch = round((right - left) * CORNER[0]), round((bottom - top) * CORNER[1])
    for ys in (slice(top, top + ch), slice(bottom - ch, bottom)):
        for xs in (slice(left, left + cw), slice(right - cw, right)):
            corners[ys, xs] = True
    # a corner is held to PIXEL_DIFFERENCE whatever its contrast: a site's light mark pasted there
    # is left to the words only where it is as plain as a word (they would have to agree in every
    # word, and OCR reads faint type with slips)
    limits[corners] = PIXEL_DIFFERENCE
    best, shifted = None, []
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            differs = (np.abs(padded[dy:dy + h, dx:dx + w] - still) > limits) & covered
            density = cv2.blur(differs.astype(np.float32), (patch, patch), borderType=cv2.BORDER_CONSTANT)
            best = density if best is None else np.minimum(best, density)
            if patch == PATCH:  # on the grid: kept for the squares a letter wide
                shifted.append(differs)
    elsewhere = float(best[~corners].max())
    corner = float(best[corners].max()) if corners.any() else 0.0
    letter = 0.0
    if shifted and _letters_measured(elsewhere):
        letters = np.min([cv2.blur(d.astype(np.float32), (LETTER, LETTER), borderType=cv2.BORDER_CONSTANT)
                          for d in shifted], axis=0)
        letter = float(letters[~corners].max())
    return Difference.of(elsewhere, corner if corner > elsewhere else 0.0, letter=letter)


def _limits(warped: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """For each pixel of two aligned pictures, by how many grey levels they may differ there and
    still count as alike: INK_SHARE of the contrast around it (the range of grey levels within a
    pixel of it, the larger of the two pictures'), from FAINTEST to PIXEL_DIFFERENCE."""
    import cv2

    square = np.ones((AROUND, AROUND), np.uint8)
    contrast = np.maximum(cv2.dilate(warped, square) - cv2.erode(warped, square),
                          cv2.dilate(fixed, square) - cv2.erode(fixed, square))
    return np.clip(contrast.astype(np.float32) * INK_SHARE, FAINTEST, PIXEL_DIFFERENCE)


def _inside(moving: tuple[int, int], transform: np.ndarray, fixed: tuple[int, int]) -> np.ndarray:
    """The pixels of `fixed` (its shape) that `transform` fills from a picture of shape `moving`,
    less the one along its edge (where resampling mixed its pixels with what lay beyond). Pictures
    compared unblurred, at a small one's own resolution, are compared up to there: a crop through
    a line of a small caption keeps only the tops of its letters (3-5 pixels), and what is left of
    them tells it from a sibling whose line says other words (left out with a margin of a few
    pixels, they matched both exactly). A picture's own edge stays in (erosion keeps what touches
    the border), as it does where the pictures are compared on the grid."""
    import cv2

    share = cv2.warpAffine(np.ones(moving, np.float32), transform, fixed[::-1], flags=cv2.INTER_LINEAR)
    return cv2.erode((share > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def _moved(transform: np.ndarray, other: np.ndarray, shape: tuple[int, int]) -> float:
    """How far apart (pixels) two transforms put the corners of a picture of this shape."""
    h, w = shape
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64).T
    return float(np.abs(transform @ corners - other @ corners).max())


def _refined(transform: np.ndarray, moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The keypoints' transform made exact to a fraction of a pixel by matching the pictures'
    intensities (OpenCV's ECC), or as it was where that does not converge."""
    import cv2

    inverse = cv2.invertAffineTransform(transform).astype(np.float32)
    try:
        _, inverse = cv2.findTransformECC(fixed, moving, inverse, cv2.MOTION_AFFINE,
                                          (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4), None, 5)
    except cv2.error:
        return transform
    return cv2.invertAffineTransform(inverse)


class FeatureCache:
    """Features of memes' pictures, by meme id, the most recently used kept."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[str, Features | None] = OrderedDict()

    def get(self, key: str, load) -> Features | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        img = load()
        found = features(img) if img is not None else None
        self._items[key] = found
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return found


def pixel_judge(picture: Image.Image | None, cache: FeatureCache, load, key: str | None = None
                ) -> Callable[[str], float | None]:
    """key -> how much `picture` (or, `key` given, the picture `load(key)`) and the picture
    `load(key)` differ once aligned (`difference`); None where either is missing. The query's
    features are made on first use, the others' kept in `cache`. Indexing and search by picture
    judge pixels with this one rule."""
    query: list = []

    def pixels(other: str) -> float | None:
        if not query:
            if key is not None:
                query.append(cache.get(key, lambda: load(key)))
            else:
                query.append(features(picture) if picture is not None else None)
        if query[0] is None:
            return None
        found = cache.get(other, lambda: load(other))
        return difference(query[0], found) if found is not None else None

    return pixels
