"""Is this picture that picture? Align two images and measure how much of them differs.

A repost is its original re-encoded, resized, cropped or framed: once aligned (ORB keypoints
matched, a similarity transform fitted with RANSAC, OpenCV), nearly every pixel agrees. Another
meme of the same template aligns just as well on the template, but its caption pixels differ.
Measured on rendered real memes (40 copies of each kind and 360 sibling pairs): the share of
differing pixels was at most 0.7% for JPEG, half-size and cropped copies and 3.6% for framed
ones (median 0.5%), and at least 2% for siblings (5th percentile 3.8%, median 10%). Indexing
1,007 such memes and 400 copies with the thresholds of archive.likeness joined 0.958 of the
copies and wrongly joined 0.21% of sibling pairs (bench/repost_groups.py).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image

SIDE = 400  # pixels on the longer side, for both images
PIXEL_DIFFERENCE = 50  # grey levels between aligned pixels that count as different


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
    """The share of b's pixels that differ from a's once a is aligned onto b; None when the two
    cannot be aligned (too few matching keypoints, or too little overlap)."""
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
    h, w = b.grey.shape
    warped = cv2.warpAffine(cv2.GaussianBlur(a.grey, (3, 3), 0), transform, (w, h))
    covered = cv2.warpAffine(np.full_like(a.grey, 255), transform, (w, h), flags=cv2.INTER_NEAREST)
    covered = cv2.erode(covered, np.ones((5, 5), np.uint8)) > 0
    if covered.mean() < 0.5:
        return None
    delta = np.abs(warped.astype(np.int16) - cv2.GaussianBlur(b.grey, (3, 3), 0).astype(np.int16))[covered]
    return float((delta > PIXEL_DIFFERENCE).mean())


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
