"""Near-duplicate groups: memes that are the same picture saying the same thing.

Two memes are look-alikes by the rule in `archive.likeness` (perceptual hashes close *and* OCR
texts that agree, or neither has text and the hashes are closer still). Indexing joins a new
image to the meme it repeats by the same rule; this finds what is left: groups made before, or
by imports. Groups are the connected look-alikes.

Cost: one pass of XOR-and-count over every pair of hashes, done with numpy row by row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archive.catalog import Catalog
from archive.caption import Caption
from archive.hashes import hamming, hash_array
from archive.likeness import MAX_DISTANCE, same_meme
from archive.model import Meme, Sighting


@dataclass
class Group:
    """Memes that are one meme seen several times: the same bytes in several files, or
    look-alike copies (re-encoded, resized, cropped) saying the same thing."""

    memes: list[Meme]

    @property
    def earliest(self) -> tuple[Meme, Sighting] | None:
        seen = [(s.seen_at, m.id, s.path, m, s) for m in self.memes for s in m.sightings if s.seen_at]
        return min(seen)[3:] if seen else None


def seen_more_than_once(catalog: Catalog) -> list[Group]:
    """Every meme seen more than once: in several files, or as look-alike copies; the group
    first seen earliest first."""
    found = lookalike_groups(catalog)
    grouped = {i for g in found for i in g}
    found += [[i] for i in catalog.with_several_sightings() if i not in grouped]
    groups = [Group([catalog.require(i) for i in ids]) for ids in found]
    return sorted(groups, key=lambda g: (g.earliest[1].seen_at.isoformat() if g.earliest else "", g.memes[0].id))


def lookalike_groups(catalog: Catalog) -> list[list[str]]:
    """Groups of two or more memes that look alike and say the same, oldest group first."""
    rows = catalog.likeness_rows()
    if len(rows) < 2:
        return []
    ids = [row[0] for row in rows]
    hashes = hash_array([row[1] for row in rows])
    captions = [Caption.of(row[2]) for row in rows]
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ids) - 1):
        dist = hamming(rows[i][1], hashes[i + 1:])
        for j in np.nonzero(dist <= MAX_DISTANCE)[0]:
            if same_meme(int(dist[j]), captions[i], captions[i + 1 + j]):
                parent[root(int(i + 1 + j))] = root(i)
    groups: dict[int, list[str]] = {}
    for i, meme_id in enumerate(ids):
        groups.setdefault(root(i), []).append(meme_id)
    return [g for g in groups.values() if len(g) > 1]
