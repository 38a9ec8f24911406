"""Is this picture that picture? Align two images and measure how much of them differs.

A repost is its original re-encoded, resized, cropped or framed: once aligned (ORB keypoints
matched, a similarity transform fitted with RANSAC and, where some difference is left, refined
to a fraction of a pixel by OpenCV's ECC), nearly every pixel agrees. Another meme of the same
template aligns just as well on the template, but its caption's letters differ. Measured on 1,007 rendered real memes (see
archive.likeness for the figures): every one of 4,032 altered copies measured 0, and pairs of
one template with other captions at least 0.196. Two earlier measures let the two overlap: the
share of all pixels that differ (a word changed in a small caption is a small share of the
picture: copies reached 6%, such siblings started at 1.2%), and keypoints alone, whose
alignment is off by 2-3 pixels on some copies, so that their letters' edges count as strokes.
One comparison took 19 ms median, 32 ms p95 here (4,032 copies and 289 siblings, while an
indexer ran beside it).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image

SIDE = 800  # pixels at most on the longer side, for both images (small captions need the detail)
PIXEL_DIFFERENCE = 50  # grey levels between aligned pixels that count as different
PATCH = 24  # pixels: about a word of a small caption at SIDE
CERTAIN = 0.6  # a difference this large before refining the alignment is never a copy's


@dataclass
class Features:
    grey: np.ndarray
    keypoints: tuple
    descriptors: np.ndarray | None


def features(img: Image.Image) -> Features:
    import cv2

    grey = np.asarray(img.convert("L"))
    scale = SIDE / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    keypoints, descriptors = cv2.ORB_create(800).detectAndCompute(grey, None)
    return Features(grey, tuple(keypoints), descriptors)


def difference(a: Features, b: Features) -> float | None:
    """How much a and b differ once aligned: the share of differing pixels in the PATCH x PATCH
    square where most differ (0 to 1); None when the two cannot be aligned (too few matching
    keypoints, or too little overlap).

    The larger picture is brought onto the smaller one's grid (shrunk by area averaging first,
    as a smaller copy was made), and differing pixels count only where they form strokes at
    least 3 pixels wide (a morphological opening): resampling and JPEG leave thin seams along
    edges, another word leaves letters. One patch, not the whole picture, is what is measured:
    a word changed in a small caption is a small share of the picture but fills its patch.
    Keypoints sit on a coarse pyramid, so where the first alignment leaves a difference that a
    copy could show, it is refined (ECC) and measured again."""
    import cv2

    if a.descriptors is None or b.descriptors is None or len(a.keypoints) < 10 or len(b.keypoints) < 10:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(a.descriptors, b.descriptors)
    if len(matches) < 10:
        return None
    source = np.float32([a.keypoints[m.queryIdx].pt for m in matches])
    target = np.float32([b.keypoints[m.trainIdx].pt for m in matches])
    transform, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if transform is None or inliers is None or int(inliers.sum()) < 8:
        return None
    moving, fixed = a.grey, b.grey
    if abs(np.linalg.det(transform[:, :2])) > 1:  # a is the smaller picture: bring b onto it
        transform, moving, fixed = cv2.invertAffineTransform(transform), b.grey, a.grey
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if scale < 0.9:  # shrink with area averaging first, as a smaller copy was made, then align
        moving = cv2.resize(moving, (max(1, round(moving.shape[1] * scale)), max(1, round(moving.shape[0] * scale))),
                            interpolation=cv2.INTER_AREA)
        transform = transform @ np.diag([1 / scale, 1 / scale, 1.0])
    h, w = fixed.shape
    covered = cv2.warpAffine(np.full_like(moving, 255), transform, (w, h), flags=cv2.INTER_NEAREST)
    covered = cv2.erode(covered, np.ones((5, 5), np.uint8)) > 0
    if covered.mean() < 0.5:
        return None
    rough = _patch_difference(moving, fixed, transform, covered)
    if rough == 0 or rough > CERTAIN:
        return rough
    return min(rough, _patch_difference(moving, fixed, _refined(transform, moving, fixed), covered))


def _patch_difference(moving: np.ndarray, fixed: np.ndarray, transform: np.ndarray, covered: np.ndarray) -> float:
    """`moving` brought onto `fixed` by `transform`: the share of differing pixels, in strokes,
    in the PATCH x PATCH square where most differ, over the `covered` part of `fixed`."""
    import cv2

    h, w = fixed.shape
    warped = cv2.warpAffine(cv2.GaussianBlur(moving, (3, 3), 0), transform, (w, h))
    differs = (np.abs(warped.astype(np.int16) - cv2.GaussianBlur(fixed, (3, 3), 0).astype(np.int16))
               > PIXEL_DIFFERENCE) & covered
    strokes = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    density = cv2.blur(strokes.astype(np.float32), (PATCH, PATCH), borderType=cv2.BORDER_CONSTANT)
    return float(density.max())


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
