"""When two images are one meme: the rule that groups reposts, shared by indexing and search.

A repost is rarely the same file: it is re-encoded, resized, cropped by a few percent or framed
with a border and a watermark. Its perceptual hash stays near the original's (a border is
trimmed before hashing; a 6% crop moves the hash by up to ~24 bits of 64, and 30-40 bits for text
on a flat colour, whose few strokes are all the hash has: `far_alike`), but memes made from
one template sit just as near each other (median 8 bits, many at 0), so the picture alone cannot
tell a repost from a sibling. What the meme says can: a repost carries the same caption, read
by OCR with a few slips, while siblings carry different ones. But OCR is noisy (two readings
of one caption can share under a fifth of their trigrams), so the deciding test, where it can be
made, is the pixels: the two pictures aligned, how much differs in strokes of letters
(`indexer.alignment`). The hash and the text only choose which memes are worth aligning.
The pixels vouch only for what both pictures show: a crop that cut off a caption's line matches
each of the template's siblings where it overlaps them, so where one picture shows only a part
of the other and the other says words it does not, neither joins the other at once: the part
joins, at the end of a run, only the one meme that matches it, and a whole picture joins a meme
through a part of it only where that part matches no other whole (a framed copy met before its
original). Where the pixels barely tell two pictures apart (a half-size copy of a small meme),
every word counts (so it does where only pictures made from their own pixels match: `resampled`);
what differs in a corner (a site's mark, or a caption's last word) is left to the words.
"""
from __future__ import annotations

from .caption import Caption, text_similarity

MAX_DISTANCE = 26  # bits of 64 between perceptual hashes: beyond, another picture unless the pixels match
# How much two aligned pictures differ (`indexer.alignment.difference`: the share of differing
# pixels in the patch where most differ): under this, one picture. On 1,007 rendered real memes
# all 4,032 altered copies measured 0, siblings (other captions) at least 0.196, captions a short
# word apart in small type at least 0.22. With stop 37's finer limits, on 144 real-template memes:
# JPEG copies up to 0.042, crops 0.023, framed 0.052; siblings at least 0.535 (README: stop 37).
MAX_PIXEL_DIFFERENCE = 0.1
# Pictures compared at a low resolution (a half-size copy of a small meme) may differ by half as
# much where a short word differs ("rain" for "calm": 0.07) as where nothing does (copies up to
# 0.094): from this much on, the pixels do not vouch for a word either picture lacks, nor for
# a picture without words to compare, nor for one that covers only part of the other (what
# differs may be what is left of a line it cut: crops of siblings' small memes cut through their
# bottom lines differed by 0.07, `cut_short`); such a picture may join the one meme that matches
# it, at a run's end.
BARELY = 0.05
# Pictures that differ by under BARELY may still differ by this share of a square about a letter
# of small type wide (`indexer.alignment.LETTER`): a letter changed in a word, which OCR's slips
# hide ("hates" / "dates" in 14 px type on a 640-pixel card: 0.042 per word-sized patch, 0.167
# per letter; "friday" / "friday?" 0.174). Copies under BARELY reached 0.104 (872 real-template
# copies, two sets; identity-set copies 0.035); one at 0.083 overall reached 0.167, where every
# word counts already. A review's copies altered twice over (halved, cropped 4-6% and saved at
# JPEG q30) reached 0.153 and 0.167 under BARELY (2 of about 1,700), and are lost. Left:
# "brave" / "grave" (0.111), "him" / "her" on a 1600-pixel page (0.069).
MAX_LETTER_DIFFERENCE = 0.15
MAX_DISTANCE_NO_TEXT = 4  # bits of 64, without pixels (none aligned, search-side groups) or text to compare
MIN_CAPTION_SIMILARITY = 0.5  # trigram Jaccard overlap of the two OCR texts
MIN_TRIGRAMS = 8  # fewer than this, and a text is too short to tell memes apart
CROPPED = (0.6, 0.99)  # the share of a picture's pixels a crop of it may have kept
COVERED = 0.97  # share of a picture another must cover to vouch for its words (a 3% crop covers 0.94-0.97)
FAR_COVERED = 0.8  # share of each other two pictures far apart by hash must cover (an 8% crop keeps 0.85)
MARK_LETTERS = 16  # what a site's mark says (imgflip.com, reddit.com/r/memes): more letters are a caption
# Pictures compared at under this resolution (`indexer.alignment`: the coarser one's pixels per pixel of
# its 640-pixel grid; a 320-pixel meme's half-size copy is 0.25) show a small caption a few pixels tall,
# and OCR misses whole lines of it: where one shows only a part of the other, what the other says
# beyond that part is not known, so the part does not vouch for it (a crop through one meme's caption
# matches a sibling's half-size copy whose OCR read only the line they share).
LEGIBLE = 0.3


def same_meme(distance: int, a: Caption, b: Caption, pixels: float | None = None) -> bool:
    """Whether two images with hashes `distance` bits apart, these OCR captions and (if they
    could be aligned) this difference of their pixels (`indexer.alignment.difference`) are one meme."""
    return verdict(distance, a, b, pixels) == SAME


SAME, UNVOUCHED, DIFFERENT = "same", "unvouched", "different"


def verdict(distance: int, a: Caption, b: Caption, pixels: float | None = None) -> str:
    """`same_meme`'s answer, and UNVOUCHED where the two may be one meme, but one picture may show
    only a part of the other, without words the other says (`vouched`, `shows_part`)."""
    if (distance > MAX_DISTANCE and not far_alike(pixels)) or words_differ(a, b, pixels):
        return DIFFERENT
    if pixels is not None:
        if in_corner(pixels) and not corner_explained(a, b):
            return DIFFERENT  # what differs is in a corner, where a site's mark goes, but so does a word
        if pixels >= MAX_PIXEL_DIFFERENCE and not (resampled(pixels) and a.words and b.words):
            return DIFFERENT
        if pixels < BARELY and getattr(pixels, "letter", 0.0) >= MAX_LETTER_DIFFERENCE:
            return DIFFERENT  # a letter changed in small type
        if pixels >= BARELY:  # the pixels barely tell these apart: every word counts, as without them
            if words_differ(a, b, pixels, every_word=True):
                return DIFFERENT
            if not (a.words and b.words):
                return UNVOUCHED  # and there are no words on one side to count
            if cut_short(pixels, min(covers(pixels))):
                return UNVOUCHED
        return SAME if vouched(a, b, pixels) else UNVOUCHED
    if a.disagrees(b, every_word=True):
        return DIFFERENT  # no pixels vouch for a word the trusted ones leave out (short, or last)
    if len(a.grams) < MIN_TRIGRAMS or len(b.grams) < MIN_TRIGRAMS:
        alike = distance <= MAX_DISTANCE_NO_TEXT and len(a.grams) < MIN_TRIGRAMS and len(b.grams) < MIN_TRIGRAMS
    else:
        alike = text_similarity(a.grams, b.grams) >= MIN_CAPTION_SIMILARITY
    if not alike:
        return DIFFERENT
    # where one says words the other does not, it may be a crop of the other through its caption
    # (or the other a sibling the crop matches as well): no pixels say which part each shows
    return UNVOUCHED if shows_part(a, b, 0.0) or shows_part(b, a, 0.0) else SAME


def may_be_crop(area: int, other: int) -> bool:
    """Whether one of two pictures with these pixel counts may be a crop of the other: it keeps
    a share of the other's pixels within CROPPED (8% cut from each edge leaves 71%; half, 25%)."""
    return 0 < min(area, other) and CROPPED[0] <= min(area, other) / max(area, other) < CROPPED[1]


def words_differ(a: Caption, b: Caption, pixels, every_word: bool = False) -> bool:
    """`Caption.disagrees`, where a picture that the aligned pixels show to be a part of the
    other (a crop: it covers less than COVERED of the other, which covers all of it) counts only
    the words it says, and each of them must be in the other: the crop may have cut the other's."""
    share_a, share_b = covers(pixels) if pixels is not None else (1.0, 1.0)
    if share_b < COVERED <= share_a:
        return a.disagrees(b, every_word, part=True)
    if share_a < COVERED <= share_b:
        return b.disagrees(a, every_word, part=True)
    return a.disagrees(b, every_word)


def corner_explained(a: Caption, b: Caption) -> bool:
    """Whether what differs in a corner of two pictures can be a site's mark: the words agree,
    every word counted, and where OCR read nothing on one picture (a crop through its caption,
    type too small), the other says no more than a mark would; otherwise the words that could
    tell a mark from a changed caption word are not there to tell."""
    if a.disagrees(b, every_word=True):
        return False
    if bool(a.tokens) != bool(b.tokens):
        return max(a.said, b.said) <= MARK_LETTERS
    return True


def vouched(a: Caption, b: Caption, pixels) -> bool:
    """Whether the pixels compared all that the words could tell: neither picture shows only a
    part of the other that leaves out words the other says (`shows_part`: a crop through a
    caption has lost the words that would tell it from a sibling's crop, or from a sibling).
    Where neither has words, each must cover all of the other (a crop may be the template's
    picture with any caption cut off, and a whole picture shows what the crop cut off); so must
    one of them where neither covers all of the other (two crops, each cut where the other was
    not: both may have cut the line telling two siblings apart, and what they cut is not known)."""
    overlap = covers(pixels)
    if max(overlap) < COVERED:
        return False
    if not (a.words or b.words):
        return min(overlap) >= COVERED
    sharp = legible(pixels)
    return not (shows_part(a, b, overlap[1], sharp) or shows_part(b, a, overlap[0], sharp))


def far_alike(pixels) -> bool:
    """Whether two pictures whose hashes are far apart are alike enough to be one all the same:
    aligned, each covers most of the other (FAR_COVERED), and not a pixel of them differs,
    corners included, compared at a legible resolution (a crop of text on a flat colour: its few
    strokes are all its hash has, and a 6% crop moves it 30-40 bits). Not merely under BARELY: a
    patch of small type on a large picture differs by under that for a letter, a comma or a short
    word ("hates" / "dates", "him" / "her"), and a crop of one such sibling matched the other at
    0.02-0.05 where the hash had kept them apart. Not with less overlap: a text post aligned onto
    the white frame of a framed copy matched with nothing differing, covering 56% of it."""
    return exact(pixels) and min(covers(pixels)) >= FAR_COVERED


def exact(pixels) -> bool:
    """Whether not a pixel of two aligned pictures differs, corners included, compared at a
    resolution at which a word's strokes show (`LEGIBLE`: at a coarser one, siblings' pictures
    may match exactly)."""
    return pixels is not None and pixels == 0 and not getattr(pixels, "corner", 0.0) and legible(pixels)


def resampled(pixels) -> bool:
    """Whether pictures compared at a small one's resolution differ only as resamplers draw them:
    made from their own pixels under BARELY, from the grids under half (copies: up to 0.48)."""
    own = getattr(pixels, "own", None)
    return own is not None and own < BARELY and pixels < 5 * MAX_PIXEL_DIFFERENCE


def covers(pixels) -> tuple[float, float]:
    """The share of the first aligned picture the second covers, and of the second the first
    (none known without pixels)."""
    return (0.0, 0.0) if pixels is None else getattr(pixels, "overlap", (1.0, 1.0))


def shows_part(a: Caption, b: Caption, covered: float, sharp: bool = True) -> bool:
    """Whether a picture with caption `a`, covering this share of one with caption `b`, shows only
    part of it, and `b` says words `a` does not (or, not `sharp`, may say words OCR did not read):
    they may be where `a` does not reach, and there a sibling's would differ."""
    if covered >= COVERED:
        return False
    return not sharp or (bool(b.words) and (not a.words or any(a.lacks(w) for w in b.words)))


def legible(pixels) -> bool:
    """Whether two aligned pictures were compared at a resolution at which OCR reads a small
    caption (`LEGIBLE`; without pixels, none is known to be less)."""
    return getattr(pixels, "detail", 1.0) >= LEGIBLE


def barely(a: Caption, pixels) -> bool:
    """Whether a picture with caption `a`, without words, matches another only as closely as
    pictures that differ in a short word may (`BARELY`)."""
    return not a.words and pixels is not None and pixels >= BARELY


def cut_short(pixels, covered: float) -> bool:
    """Whether a picture covering this share of another, differing from it by `pixels`, may be a
    crop through a line of its caption that kept what is left of the letters (it covers under
    COVERED, they differ by BARELY or more): OCR reads none of that line to tell a sibling's."""
    return covered < COVERED and pixels is not None and pixels >= BARELY


def in_corner(pixels) -> bool:
    """Whether two aligned pictures match only with a corner left out (`indexer.alignment`:
    the corner differs more than the rest, and more than a copy's pixels may)."""
    return float(getattr(pixels, "corner", 0.0)) >= MAX_PIXEL_DIFFERENCE
