"""Repost groups at indexing time: altered copies of a meme become sightings of it; memes of one
template with other captions stay memes of their own (the rule in archive.likeness)."""
from __future__ import annotations

import json
import os
import random
import sys
import time

import pytest
from PIL import Image, ImageDraw, ImageFont

from archive.caption import Caption
from archive.likeness import BARELY, MAX_PIXEL_DIFFERENCE, same_meme
from archive.lookalikes import Likeness
from tests.conftest import ROOT, flat_colour_memes


def test_aligned_pixels_tell_a_copy_from_a_sibling():
    from indexer.alignment import difference, features

    evalset = _evalset_module()
    picture = evalset.template_picture(5)
    original, sibling = picture.copy(), picture.copy()
    evalset.caption(original, "the printer says paper jam", "top")
    evalset.caption(sibling, "the bus leaves at eight", "top")
    copies = evalset.alterations(original, random.Random(1))
    base = features(original)
    for name, copy in copies.items():
        assert difference(features(copy), base) < MAX_PIXEL_DIFFERENCE, name
    assert difference(features(sibling), base) > MAX_PIXEL_DIFFERENCE
    unrelated = difference(features(evalset.template_picture(9)), base)
    assert unrelated is None or unrelated > 0.05  # another picture: no alignment, or much differs


def test_one_other_word_is_another_meme_and_a_copy_is_not():
    """A word changed in a long caption in small type changes a tiny share of the picture (0.2%
    here) but fills the patch it is in; the copies' differences vanish once aligned exactly."""
    from indexer.alignment import difference, features

    evalset = _evalset_module()
    picture = evalset.template_picture(9)
    words = ("when you finally fix the bug at three in the morning and the build server says the tests "
             "passed on the first try but then you notice it ran zero tests because the folder was")
    original, sibling = picture.copy(), picture.copy()
    evalset.caption(original, words + " empty", "top")
    evalset.caption(sibling, words + " full", "top")
    base = features(original)
    for name, copy in evalset.alterations(original, random.Random(2)).items():
        assert difference(features(copy), base) < MAX_PIXEL_DIFFERENCE, name
        assert difference(base, features(copy)) < MAX_PIXEL_DIFFERENCE, name  # either way round
    assert difference(features(sibling), base) > MAX_PIXEL_DIFFERENCE
    assert difference(base, features(sibling)) > MAX_PIXEL_DIFFERENCE


def test_a_half_size_copy_of_an_outlined_caption_on_a_light_area_is_the_same_picture():
    """White captions outlined in black on a light area (Grumpy Cat): at half size the outlines
    are a pixel wide. Compared on pictures made from the grids (each enlarged to it and shrunk
    back), the copy's outlines came out sharper than its original's and differed as letters do
    (0.104-0.132 here, 0.19-0.24 for real Grumpy Cat copies); made from the pictures themselves in
    one step, they agree, and every word decides. A word changed in the caption still differs."""
    import io

    from archive.likeness import resampled, verdict
    from indexer.alignment import difference, features

    evalset = _evalset_module()
    from make_samples import font

    def jpeg(img: Image.Image, quality: int) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    def meme(text: str, n: int, size: tuple[int, int]) -> Image.Image:
        img = evalset.template_picture(n).resize(size)
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, 0, size[0], size[1] // 4], fill=(236, 234, 230))
        draw.multiline_text((size[0] // 2, 10), text, font=font(size[0] // 16), fill="white", stroke_width=2,
                            stroke_fill="black", anchor="ma", align="center")
        return jpeg(img, 90)

    for n, size in ((5, (500, 617)), (9, (480, 560))):
        original, sibling = meme("WHEN THE PRINTER\nSAYS PAPER JAM", n, size), meme("WHEN THE PRINTER\nSAYS PAPER JOB", n, size)
        half = (size[0] // 2, size[1] // 2)
        copy, sibling_copy = features(jpeg(original.resize(half), 85)), features(jpeg(sibling.resize(half), 85))
        base = features(original)
        for pixels in (difference(copy, base), difference(base, copy)):
            assert pixels < BARELY or resampled(pixels), n
            assert verdict(0, Caption.of("when the printer says paper jam"), Caption.of("when the printer says paper jam"),
                           pixels) == "same"
        for pixels in (difference(sibling_copy, base), difference(base, sibling_copy)):
            assert pixels > MAX_PIXEL_DIFFERENCE and not resampled(pixels), n


def test_the_same_words_on_a_colour_a_little_apart_stay_another_meme_in_a_jpeg_copy():
    """A held-out identity set (seed 379): the same words on (148, 142, 128) and (170, 121, 154);
    the second's JPEG copy at quality 30 came 22 grey levels from the first in its largest
    channel, under the 24 allowed then, and the two memes were folded into one."""
    import io

    from indexer.alignment import DIFFERENT, difference, features

    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set

    text = "good cactus fixes the keys before work 46"
    first, second = (make_identity_set.flat(text, random.Random(0), (395, 296), colour, True)
                     for colour in ((148, 142, 128), (170, 121, 154)))
    buf = io.BytesIO()
    second.convert("RGB").save(buf, "JPEG", quality=30)
    copy = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert difference(features(copy), features(first)) == DIFFERENT
    assert difference(features(copy), features(second)) < BARELY


def test_a_crop_of_a_small_meme_is_aligned_where_its_keypoints_fail(monkeypatch):
    """A small meme enlarged to the grid has soft corners: its crop's keypoints match at random
    (a handful of inliers), so the crop was not aligned at all and its words alone decided."""
    import indexer.alignment as alignment
    from indexer.imageio import model_input

    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set

    rnd = random.Random(3)
    original, _ = make_identity_set.originals("small", 0, rnd, 3)[0]
    crop = make_identity_set.alterations(original, rnd)["crop"][0]
    pictures = alignment.features(model_input(crop)), alignment.features(model_input(original))
    assert alignment.difference(*pictures) < MAX_PIXEL_DIFFERENCE
    assert alignment.difference(*pictures[::-1]) < MAX_PIXEL_DIFFERENCE
    monkeypatch.setattr(alignment, "_slid", lambda a, b: None)
    assert alignment.difference(*pictures) is None  # keypoints alone: no alignment


def test_a_crop_through_a_small_caption_line_keeps_what_tells_it_from_a_sibling(monkeypatch):
    """A crop of a small meme cut through its top line, leaving the bottom few pixels of the
    letters: against its original nothing differs; against a sibling whose top line says another
    word, what is left of the letters differs as a word does, though OCR reads none of them (with
    the edge left out by a few pixels, the crop matched the sibling as closely as a copy may)."""
    from indexer.alignment import difference, features
    from indexer.imageio import model_input

    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set
    from make_samples import photo

    picture = photo(11, (300, 225))
    original, sibling = picture.copy(), picture.copy()
    for img, top in ((original, "grumpy meme says the"), (sibling, "grumpy meme says waffle")):
        make_identity_set.small_caption(img, top, "top", 12)
        make_identity_set.small_caption(img, "bus on the train", "bottom", 12)
    rows = [y for y in range(40) if any(original.getpixel((x, y)) == (255, 255, 255) for x in range(300))]
    crop = original.crop((0, rows[-1] - 2, 300, 225))  # the lowest 3 rows of the top line's letters stay
    seen = features(model_input(crop))
    assert difference(seen, features(model_input(original))) < BARELY
    assert difference(seen, features(model_input(sibling))) >= MAX_PIXEL_DIFFERENCE  # as a word does
    assert difference(features(model_input(sibling)), seen) >= MAX_PIXEL_DIFFERENCE  # either way round
    # a refinement that strays (ECC placing the picture off the other) compares nothing: not used
    import indexer.alignment as alignment
    monkeypatch.setattr(alignment, "_refined", lambda transform, moving, fixed: transform + [[0, 0, 900], [0, 0, 0]])
    assert difference(seen, features(model_input(sibling))) >= MAX_PIXEL_DIFFERENCE


def test_the_rule_wants_the_picture_and_the_words_to_agree():
    words = Caption.of("ONE DOES NOT SIMPLY INDEX FIFTY THOUSAND MEMES")
    misread = Caption.of("ONE DOES NOT SIMPIY INDEX FIFTY THOUSAND MEMFS")
    other = Caption.of("ONE DOES NOT SIMPLY WALK INTO MORDOR")
    nothing = Caption.of([])
    assert same_meme(14, words, misread)  # a crop moves the hash; the words still agree
    assert not same_meme(0, words, other)  # the same template, another caption
    assert not same_meme(30, words, words)  # the same words on another picture
    assert same_meme(2, nothing, nothing) and not same_meme(9, nothing, nothing)
    likeness = Likeness([("a", "ffff0000ffff0000", "one does not simply index fifty thousand memes")])
    assert likeness.find(["ffff0000ffff0001"], "ONE DOES NOT SIMPLY INDEX FIFTY THOUSAND MEMES") == "a"
    assert likeness.find(["ffff0000ffff0001"], "BRACE YOURSELVES THE MEMES ARE COMING") is None
    for n in range(40):  # grows past its first allocation
        likeness.add(f"m{n}", f"{n:016x}", f"caption number {n} about something else entirely")
    assert likeness.find([f"{39:016x}"], "caption number 39 about something else entirely") == "m39"


def test_a_picture_that_matches_to_the_pixel_spares_comparing_the_rest():
    from indexer.alignment import Difference

    likeness = Likeness([("sibling", "ffff0000ffff0001", "ONE DOES NOT SIMPLY WALK INTO MORDOR"),
                         ("meme", "ffff0000ffff0003", "ONE DOES NOT SIMPLY INDEX FIFTY THOUSAND MEMES"),
                         ("cousin", "ffff0000ffff0000", "ONE DOES NOT SIMPLY INDEX FIFTY THOUSAND MEMES TODAY")])
    asked = []

    def pixels(picture, differences={"meme": 0.0, "cousin": 0.0, "sibling": 0.2}):
        asked.append(picture)
        return Difference.of(differences[picture], corner=False)

    caption = "ONE DOES NOT SIMPLY INDEX FIFTY THOUSAND MEMES"
    likeness.add("meme", "ffff0000ffff0003", caption + " TODAY", picture="meme")  # another picture of it
    found = likeness.match(["ffff0000ffff0000"], Caption.of(caption), pixels)
    assert found.meme == "meme" and found.also == {"cousin"}
    # its words are the nearest: the others cannot rank before it; its meme's other pictures
    # are spared, another meme's are compared (the image may repeat that one too)
    assert asked == ["meme", "cousin"]
    asked.clear()
    assert likeness.find(["ffff0000ffff0000"], caption, lambda p: pixels(p, {"meme": 0.01, "cousin": 0.0,
                                                                             "sibling": 0.2})) == "cousin"
    assert "cousin" in asked and "meme" in asked  # no exact match first: every candidate is compared


def test_a_picture_without_words_vouches_only_for_what_it_covers():
    """A crop through its caption (OCR read nothing) matches its template's siblings where it
    overlaps them; what differs in a corner may be a site's mark or a caption's last word."""
    from indexer.alignment import Difference

    robot = Caption.of("fuzzy toaster fixes the moon at the robot")
    gym = Caption.of("uzzytoasterfixesthemoonatthegym uz zy toaster fixes the moon at the gym")
    unread, mark = Caption.of(["", ""]), Caption.of("imgflip.com img flip com")
    same = Difference.of(0.0, 0.0, (0.9, 1.0))  # the second picture covers 90% of the first
    assert not same_meme(4, robot, unread, same)
    assert not same_meme(4, unread, robot, Difference.of(0.0, 0.0, (1.0, 0.9)))
    assert same_meme(4, robot, unread, Difference.of(0.0, 0.0, (1.0, 0.9)))  # all of it is compared
    assert not same_meme(4, unread, unread, Difference.of(0.0, 0.0, (0.9, 0.9)))  # two crops: neither whole
    assert not same_meme(4, unread, unread, Difference.of(0.0, 0.0, (1.0, 0.9)))  # a crop: it may be of a sibling
    corner = Difference.of(0.0, 0.4)  # all that differs is in a corner
    assert not same_meme(0, unread, gym, corner)  # a caption's word may be there: nothing to tell by
    assert same_meme(0, unread, mark, corner) and same_meme(0, gym, Caption.of(
        "uzzytoasterfixesthemoonatthegym uz zy toaster fixes the moon at the gym imgflip.com img flip com"), corner)
    assert not same_meme(0, robot, Caption.of("fuzzy toaster fixes the moon at the gym memegen.io"), corner)
    # a misread glued word splits into fragments no reading says ("wal nus"): not another word
    assert same_meme(16, Caption.of("hungry cactus follows breakfast after walrus 7 memegen.io meme geni o"),
                     Caption.of("hungry cactus follows breakfastafter breakfast after walnus7 wal nus 7"), corner)
    assert not same_meme(8, robot, gym)  # without pixels, a short last word counts too
    assert same_meme(8, robot, Caption.of("fuzzy toaster fixes the moon at the robot memegen.io"))


def test_a_meme_met_before_its_original_is_looked_at_again_by_what_came_after():
    likeness = Likeness([])
    likeness.add("copy", "ffff0000ffff0000", "one does not simply index fifty thousand memes posted by me")
    after = len(likeness.ids)
    likeness.add("other", "ffff0000ffff0001", "one does not simply index fifty thousand memes")
    caption = "one does not simply index fifty thousand memes posted by me"
    same = lambda picture: 0.0  # noqa: E731 - the pictures match, all of each (a mark inside it)
    assert likeness.find(["ffff0000ffff0000"], caption, same, exclude={"copy"}, after=after) == "other"
    assert likeness.find(["ffff0000ffff0000"], caption, same, exclude={"copy"}, after=after + 1) is None
    likeness.relabel("other", "copy")  # folded: its pictures are the other meme's now
    assert likeness.find(["ffff0000ffff0001"], "one does not simply index fifty thousand memes", same) == "copy"
    # without pixels, the one saying less may be a crop through the other's caption: it joins
    # only at the end of a run, where it matches no other meme
    framed = Likeness([("copy", "ffff0000ffff0000", "one does not simply index fifty thousand memes posted by me")])
    assert framed.find(["ffff0000ffff0001"], "one does not simply index fifty thousand memes") is None
    assert framed.find(["ffff0000ffff0001"], "one does not simply index fifty thousand memes", sole=True) == "copy"


def test_a_crop_without_words_joins_at_the_end_only_the_one_meme_it_matches():
    from indexer.alignment import Difference

    likeness = Likeness([("gym", "ffff0000ffff0000", "fuzzy toaster fixes the moon at the gym"),
                         ("robot", "ffff0000ffff0001", "fuzzy toaster fixes the moon at the robot")])
    part = Difference.of(0.0, 0.0, (1.0, 0.9))  # all of the crop is in the other, 90% of the other in it
    matches = {"gym": part, "robot": Difference.of(0.3, 0.0, (1.0, 0.9))}
    assert likeness.find(["ffff0000ffff0000"], ["", ""], matches.get) is None  # while others may come
    assert likeness.find(["ffff0000ffff0000"], ["", ""], matches.get, sole=True) == "gym"
    both = {"gym": part, "robot": part}  # the caption cut off: each sibling matches as well
    assert likeness.find(["ffff0000ffff0000"], ["", ""], both.get, sole=True) is None
    # a picture with words never joins through a crop that cannot show them
    crops = Likeness([("crop", "ffff0000ffff0000", ["", ""])])
    assert crops.find(["ffff0000ffff0000"], "fuzzy toaster fixes the moon at the robot",
                      lambda p: Difference.of(0.0, 0.0, (0.9, 1.0)), sole=True) is None


def test_a_crop_that_cut_words_at_its_edge_counts_only_the_words_it_says():
    """A crop through a text post cuts every line's first letters ("41" of "9:41", "alm" of
    "calm"): the whole's words it lacks are cut off, not other words; it is a part of the whole
    and joins it at the end of a run, where no other meme matches it. A crop that says a word
    the whole does not is another meme's, whatever the pixels say."""
    from archive.likeness import UNVOUCHED, verdict
    from indexer.alignment import Difference

    whole = "Quiet Robot @quiet_robot calm toaster breaks taxes at midnight. proud banana finds socks 9:41 AM Dec 3"
    crop = "uiet Robot quiet_robot alm toaster breaks taxes at midnight. roud banana finds socks 41 AM Dec 3"
    part = Difference.of(0.0, 0.0, (1.0, 0.9))  # all of the crop is in the whole, 90% of the whole in it
    assert verdict(14, Caption.of(crop), Caption.of(whole), part) == UNVOUCHED
    assert verdict(14, Caption.of(whole), Caption.of(crop), Difference.of(0.0, 0.0, (0.9, 1.0))) == UNVOUCHED
    assert not same_meme(14, Caption.of(crop), Caption.of(whole))  # without pixels, "941" is not "41"
    other = crop.replace("finds", "hides")
    assert not same_meme(14, Caption.of(other), Caption.of(whole), part)
    likeness = Likeness([("post", "ffff0000ffff0000", whole, 621 * 170)])
    assert likeness.find(["ffff0000ffff0001"], crop, lambda p: part, area=573 * 157) is None  # others may come
    assert likeness.find(["ffff0000ffff0001"], crop, lambda p: part, area=573 * 157, sole=True) == "post"
    assert likeness.find(["ffff0000ffff0001"], other, lambda p: part, area=573 * 157, sole=True) is None
    # OCR misreads a line's cut start ("in inner a" for "he rain", seen on a held-out set): one
    # word put in among many the whole says is a slip, where one put for a word of the whole is not
    slip = crop.replace("finds socks", "finds inner socks")
    assert likeness.find(["ffff0000ffff0001"], slip, lambda p: part, area=573 * 157, sole=True) == "post"
    assert likeness.find(["ffff0000ffff0001"], slip.replace("finds", "hides"), lambda p: part, area=573 * 157,
                         sole=True) is None


def test_an_image_that_repeats_pictures_of_two_memes_shows_they_are_one():
    """Bridges: what an image repeats besides the meme it joins (`Match.also`) are pictures with
    words, as its own are; a picture without words (a half-size copy whose type OCR cannot
    read) matches siblings too."""
    from indexer.alignment import Difference

    said = "fuzzy toaster fixes the moon every morning"
    likeness = Likeness([("half", "ffff0000ffff0000", said), ("mark", "ffff0000ffff0001", said + " imgflip.com"),
                         ("tiny", "ffff0000ffff0002", ["", ""])])
    same = lambda p: Difference.of(0.0, 0.0)  # noqa: E731
    found = likeness.match(["ffff0000ffff0000"], Caption.of(said), same)
    assert found.meme is not None and found.also == {"half", "mark"} - {found.meme}
    assert likeness.match(["ffff0000ffff0000"], Caption.of(["", ""]), same).also == set()


def test_memes_of_a_run_that_one_image_repeats_both_of_are_folded(tmp_path, monkeypatch):
    """A half-size copy and a watermarked copy met before their original do not vouch for each
    other: each became a meme. The original repeats both: at the run's end one is folded into
    the other with its files, unless their words differ or the user set them apart."""
    from datetime import datetime, timezone

    from PIL import Image

    from archive.catalog import Catalog
    from archive.model import Meme, OcrText, Sighting
    from indexer.alignment import Difference
    from indexer.reposts import Reposts

    unlike = {frozenset(("half", "mark")), frozenset(("morning", "weekend"))}  # pixels that differ
    asking: list[str] = []

    def judge(self, picture=None, key=None):
        me = (key or asking[-1]).rstrip("0")
        return lambda other: Difference.of(0.3 if frozenset((me, other.rstrip("0"))) in unlike else 0.0, 0.0)

    monkeypatch.setattr(Reposts, "_judge", judge)
    picture = Image.new("RGB", (64, 64), "white")

    def run(texts: dict[str, str], rules=()) -> tuple[str | None, list[tuple[str, str]]]:
        catalog = Catalog(tmp_path / f"{len(list(tmp_path.iterdir()))}.sqlite3")
        for rule in rules:
            catalog.put_identity_rule(*rule)
        reposts = Reposts(catalog, 10**7)
        for name, text in texts.items():
            digest = name.ljust(64, "0")
            asking.append(digest[:16])
            joined = reposts.find(["ffff0000ffff0000"], [text], picture, 90_000)
            if name == "original":
                break
            assert joined is None  # each copy sees pictures it is not
            meme = Meme(id=digest[:16], content_hash=digest, phash="ffff0000ffff0000", width=300, height=300,
                        sections=[OcrText("rapidocr", text)], first_seen=datetime.now(timezone.utc),
                        sightings=[Sighting(f"/m/{name}.jpg", datetime.now(timezone.utc), content_hash=digest)])
            catalog.save(meme)
            reposts.remember(meme, picture)
        return joined and joined.rstrip("0"), [(m.rstrip("0"), into.rstrip("0")) for m, into in reposts.second_look()]

    said = "fuzzy toaster fixes the moon every morning"
    joined, folded = run({"half": said, "mark": said, "original": said})
    assert joined in {"half", "mark"} and folded == [(({"half", "mark"} - {joined}).pop(), joined)]
    # the user said one of them is not the other: they stay two
    rule = ("mark".ljust(64, "0"), "apart", "half".ljust(64, "0"))
    assert run({"half": said, "mark": said, "original": said}, [rule])[1] == []
    # two memes whose words differ stay two, whatever one image that says less matches
    joined, folded = run({"morning": said, "weekend": said.replace("morning", "weekend"),
                          "original": "fuzzy toaster fixes the moon every"})
    assert joined in {"morning", "weekend"} and folded == []


def test_a_meme_folded_in_a_run_is_still_compared_by_its_picture(tmp_path):
    """Once the second look folds a meme into another, its picture still stands for it in the
    rest of the run (a sighting of the meme it is part of now). Without it the rule compares
    hashes and words only, and two pictures without words a few bits apart pass for one meme:
    a crop through one sibling's caption joined another's meme that way, through the other's
    crop folded into it."""
    from datetime import datetime, timezone

    from PIL import Image

    from archive.catalog import Catalog
    from archive.model import Meme, Sighting
    from indexer.alignment import FeatureCache
    from indexer.imageio import content_hash
    from indexer.reposts import Reposts

    catalog = Catalog(tmp_path / "catalog.sqlite3")
    reposts = Reposts(catalog, 10**7)
    reposts._features = FeatureCache(size=1)  # a run of hundreds of pictures keeps none of the first

    def saved(name: str, colour: str, at: tuple[int, int] = (40, 30)) -> tuple[Meme, Image.Image]:
        picture = Image.new("RGB", (320, 240), colour)
        picture.paste(Image.new("RGB", (80, 60), "white"), at)
        path = tmp_path / f"{name}.png"
        picture.save(path)
        digest = content_hash(path.read_bytes())
        meme = Meme(id=digest[:16], content_hash=digest, phash="ffff0000ffff0000", width=320, height=240,
                    first_seen=datetime.now(timezone.utc),
                    sightings=[Sighting(str(path), datetime.now(timezone.utc), content_hash=digest)])
        catalog.save(meme)
        reposts.remember(meme, picture)
        return meme, picture

    crop, _ = saved("crop", "darkred")
    original, _ = saved("original", "darkred", (200, 150))
    catalog.merge_into(original.id, crop)
    reposts.merged(crop, original.id)
    saved("other", "navy")  # evicts the crop's features: they must load again
    green = Image.new("RGB", (320, 240), "darkgreen")
    green.paste(Image.new("RGB", (80, 60), "white"), (40, 30))
    assert reposts.find(["ffff0000ffff0000"], [""], green, 320 * 240) is None
    red = Image.new("RGB", (320, 240), "darkred")
    red.paste(Image.new("RGB", (80, 60), "white"), (40, 30))
    assert reposts.find(["ffff0000ffff0000"], [""], red, 320 * 240) == original.id


@pytest.fixture
def grouping(archive_dir, monkeypatch):
    monkeypatch.setenv("MEMES_GROUP_REPOSTS", "1")
    return archive_dir


def test_a_crop_that_cut_off_the_line_where_two_siblings_differ_joins_neither():
    """A crop of one meme that cut its last line off shows the part two siblings share: it
    matches each of them there, so it joins neither, and a whole picture never joins a meme
    through a part of a picture (the fold a crop with words made before: the crop joined the
    sibling, and the original then joined it through the crop)."""
    from indexer.alignment import Difference

    likeness = Likeness([("gym", "ffff0000ffff0000", "fuzzy toaster fixes the moon every morning at the gym"),
                         ("robot", "ffff0000ffff0001", "fuzzy toaster fixes the moon every morning with a robot")])
    crop = "fuzzy toaster fixes the moon every"  # what is left of either once the last line is cut off
    part = Difference.of(0.0, 0.0, (1.0, 0.9))  # all of the crop is in the other, 90% of the other in it
    assert likeness.find(["ffff0000ffff0000"], crop, lambda p: part) is None  # not while others may come
    assert likeness.match(["ffff0000ffff0000"], Caption.of(crop), lambda p: part).unvouched == {"gym", "robot"}
    assert likeness.find(["ffff0000ffff0000"], crop, lambda p: part, sole=True) is None  # each matches
    apart = {"gym": part, "robot": Difference.of(0.3, 0.0, (1.0, 0.9))}
    assert likeness.find(["ffff0000ffff0000"], crop, apart.get, sole=True) == "gym"  # one only: that one
    # the whole picture met after the crop does not join the crop's meme: it only sees a part of it
    likeness.add("gym", "ffff0000ffff0002", crop, picture="the crop")
    whole = "fuzzy toaster fixes the moon every morning with a robot"
    pictures = {"gym": Difference.of(0.3, 0.0), "robot": Difference.of(0.0, 0.0),
                "the crop": Difference.of(0.0, 0.0, (0.9, 1.0))}
    found = likeness.match(["ffff0000ffff0002"], Caption.of(whole), pictures.get, exclude={"robot"}, sole=True)
    assert found.meme is None and found.parts == {"gym": 2} and not found.unvouched


def test_a_crop_matching_one_meme_at_a_finer_resolution_than_the_others_joins_it():
    """A crop through a small meme's caption matches its original and a sibling's half-size copy
    (whose words are a few pixels, too few to tell the two apart) as closely: the comparison made
    at twice the resolution decides. At about the same resolution, or where the finer one
    matches only as closely as a word apart may, neither is chosen; a sibling's picture that,
    compared at about the same resolution, differs by more than a copy does (on a held-out set,
    a sibling's crop that kept less of the caption: 0.074 where the crop's own original measured
    0.049) does not stand in the way."""
    from indexer.alignment import Difference

    likeness = Likeness([("gym", "ffff0000ffff0000", "fuzzy toaster fixes the moon every morning at the gym"),
                         ("robot", "ffff0000ffff0001", "fuzzy toaster fixes the moon every morning with a robot")])
    crop = "fuzzy toaster fixes the moon every"

    def part(pixels: float, detail: float) -> Difference:
        return Difference.of(pixels, 0.0, (1.0, 0.9), detail)

    half = part(0.0, 0.23)
    assert likeness.find(["ffff0000ffff0000"], crop, {"gym": part(0.0, 0.45), "robot": half}.get, sole=True) == "gym"
    assert likeness.find(["ffff0000ffff0000"], crop, {"gym": part(0.0, 0.45), "robot": part(0.0, 0.4)}.get,
                         sole=True) is None
    assert likeness.find(["ffff0000ffff0000"], crop, {"gym": part(0.06, 0.45), "robot": half}.get, sole=True) is None
    # a sibling's picture compared at about the same resolution, differing by more than a copy
    # does (a crop that kept less of the caption), does not stand in the way
    assert likeness.find(["ffff0000ffff0000"], crop, {"gym": part(0.04, 0.5), "robot": part(0.07, 0.47)}.get,
                         sole=True) == "gym"
    assert likeness.find(["ffff0000ffff0000"], crop, {"gym": part(0.04, 0.3), "robot": part(0.07, 0.47)}.get,
                         sole=True) is None  # the sibling was seen sharper than the match


def test_two_crops_each_cut_where_the_other_was_not_do_not_vouch_for_each_other():
    """Seen on a held-out set: 6% crops of two sibling small memes ("ANGRY CAT LOVES / MONDAY ON THE
    TRAIN", "POLITE PRINTER LOVES / ...") both cut the whole top line; what is left is one picture
    (difference 0 at 0.46 of the grid, each covering 0.95-0.96 of the other) with one set of words,
    and the two joined. Neither covering all of the other, neither vouches for what the other cut;
    where one covers all of the other (a crop and a copy of its whole), they are one meme."""
    from archive.likeness import SAME, UNVOUCHED, verdict
    from indexer.alignment import Difference

    left = Caption.of("MONDAY ON THE TRAIN")
    two_crops = Difference.of(0.0, 0.0, (0.964, 0.948), 0.46)
    assert verdict(2, left, left, two_crops) == UNVOUCHED
    assert verdict(2, left, left, Difference.of(0.0, 0.0, (1.0, 0.948), 0.46)) == SAME
    likeness = Likeness([("cat", "ffff0000ffff0000", "MONDAY ON THE TRAIN", 293 * 293)])
    assert likeness.find(["ffff0000ffff0000"], "MONDAY ON THE TRAIN", lambda key: two_crops, 295 * 295) is None
    assert likeness.find(["ffff0000ffff0000"], "MONDAY ON THE TRAIN", lambda key: two_crops, 295 * 295, sole=True) is None


def test_a_part_that_differs_a_little_with_the_same_words_waits_for_the_run_end():
    """Seen on a held-out set: crops of two sibling small memes ("... MOON ON THE TRAIN", "... MOON
    ON THE GRUMPY") cut through the bottom line; OCR read the same top line on both, and what is
    left of the cut letters differed by 0.07 (under MAX_PIXEL_DIFFERENCE, over BARELY), one
    covering all of the other: they joined, each apart from its original. A picture that covers
    only part of another and differs from it by more than a copy's pixels does not vouch for it,
    whatever the words say: it waits for a run's end and joins the one whole it may be a part of.
    Where nothing differs, or each covers all of the other, as before."""
    from archive.likeness import SAME, UNVOUCHED, verdict
    from indexer.alignment import Difference

    top = Caption.of("PROUD GOOSE PAINTS THE")
    assert verdict(3, top, top, Difference.of(0.07, 0.0, (0.995, 0.962), 0.43)) == UNVOUCHED
    assert verdict(3, top, top, Difference.of(0.02, 0.0, (0.995, 0.962), 0.43)) == SAME
    assert verdict(3, top, top, Difference.of(0.07, 0.0, (1.0, 1.0), 0.43)) == SAME  # a whole's copy
    rest = Difference.of(0.07, 0.0, (0.995, 0.962), 0.43)
    likeness = Likeness([("train", "ffff0000ffff0000", "PROUD GOOSE PAINTS THE", 278 * 208)])
    assert likeness.find(["ffff0000ffff0000"], "PROUD GOOSE PAINTS THE", lambda key: rest, 273 * 205) is None
    assert likeness.find(["ffff0000ffff0000"], "PROUD GOOSE PAINTS THE", lambda key: rest, 273 * 205,
                         sole=True) == "train"  # the one whole it may be a part of
    likeness.add("grumpy", "ffff0000ffff0001", "PROUD GOOSE PAINTS THE", area=278 * 208)
    assert likeness.find(["ffff0000ffff0000"], "PROUD GOOSE PAINTS THE", lambda key: rest, 273 * 205,
                         sole=True) is None  # two wholes match it alike: none


def test_a_crop_through_a_caption_band_joins_the_one_meme_it_matches_with_nothing_differing():
    """A 6% crop of a meme with its caption on a band above the picture cuts the line in half:
    OCR reads nothing, and what is left of the line is a sliver. Seen on a held-out set: the
    siblings' pictures differed from it by 0.02-0.049 (less than copies may), its own original's
    by nothing, all compared at 0.85 of the grid. That one joins; where two match with nothing
    differing (the crop cut the whole line off) or the exact match was seen coarser, none does."""
    from indexer.alignment import Difference

    said = {"brave": "fuzzy pigeon ignores the brave before work", "calm": "fuzzy pigeon ignores the calm before work",
            "garden": "fuzzy pigeon ignores the garden before work"}
    likeness = Likeness([(m, f"ffff0000ffff000{n}", text, 559 * 462) for n, (m, text) in enumerate(said.items())])

    def part(pixels: float, detail: float = 0.85) -> Difference:
        return Difference.of(pixels, 0.0, (1.0, 0.9), detail)

    def joined(pixels: dict) -> str | None:
        return likeness.find(["ffff0000ffff0000"], ["", ""], pixels.get, area=530 * 438, sole=True)

    assert joined({"brave": part(0.0), "calm": part(0.021), "garden": part(0.049)}) == "brave"
    assert joined({"brave": part(0.0), "calm": part(0.0), "garden": part(0.049)}) is None
    assert joined({"brave": part(0.0, 0.5), "calm": part(0.021), "garden": part(0.049)}) is None
    # at a coarse resolution siblings' pictures match exactly too; a corner may hide a word
    coarse = {"brave": part(0.0, 0.25), "calm": part(0.03, 0.25), "garden": part(0.049, 0.25)}
    assert joined(coarse) is None
    cornered = Difference.of(0.0, 0.08, (1.0, 0.9), 0.85)
    assert joined({"brave": cornered, "calm": part(0.021), "garden": part(0.049)}) is None


def test_a_small_copy_matching_a_crop_at_a_low_resolution_does_not_join_it():
    """A crop through a small meme's top caption keeps its bottom line; a sibling's half-size copy,
    whose OCR read only that line (the top one is a few pixels tall at half size), matches the
    crop where the crop reaches, compared at a quarter of the grid's resolution. What the copy
    shows beyond the crop is not known, so it does not join the crop's meme: the crop may be a
    part of it, which a run's end settles. Compared at a resolution OCR reads, or covered whole,
    it joins (seen on a held-out set: a 160-pixel copy of "wild dragon follows / hello at
    midnight" joined the crop of "clever robot follows / hello at midnight")."""
    from indexer.alignment import Difference

    likeness = Likeness([("crop", "ffff0000ffff0000", "HELLO AT MIDNIGHT")])
    half = "HELLOATMIDNIGHT hello at midnight"

    def compared(covered: float, detail: float) -> Difference:
        return Difference.of(0.0, 0.0, (covered, 1.0), detail)  # the crop covers `covered` of the copy

    found = likeness.match(["ffff0000ffff0000"], Caption.of(half), lambda p: compared(0.89, 0.25))
    assert found.meme is None and found.parts == {"crop": 0}
    assert likeness.find(["ffff0000ffff0000"], half, lambda p: compared(0.89, 0.47)) == "crop"
    assert likeness.find(["ffff0000ffff0000"], half, lambda p: compared(1.0, 0.25)) == "crop"


def test_a_crop_without_words_finds_its_original_beyond_the_siblings_copies():
    """A crop through a small meme's caption that OCR reads nothing on has only its hash to choose
    candidates by, and a crop moves the hash up to ~24 bits: its original 18 bits away is
    compared, past the siblings' copies nearer to it (one picture of each farther meme). A small
    picture without words is not: at its size the pixels could not tell the siblings apart."""
    from indexer.alignment import Difference

    def bits(n: int, shift: int = 0) -> str:
        return format(((1 << n) - 1) << shift, "016x")

    memes = [("gym", bits(18), "fuzzy toaster fixes the moon every morning at the gym", 320 * 320)]
    for i, word in enumerate(["robot", "train", "party", "beach", "office", "garden"]):
        memes += [(word, bits(12 + i % 3, shift), f"fuzzy toaster fixes the moon every morning at the {word}", 320 * 320)
                  for shift in range(4)]
    likeness = Likeness(memes)
    compared = {"gym": Difference.of(0.0, 0.0, (1.0, 0.88), 0.47)}
    sibling = Difference.of(0.2, 0.0, (1.0, 0.88), 0.47)

    def pixels(key: str) -> Difference:
        return compared.get(key, sibling)

    assert likeness.find([bits(0)], "", pixels, 300 * 300, sole=True) == "gym"
    assert likeness.find([bits(0)], "", pixels, 150 * 150, sole=True) is None


def test_a_crop_with_words_finds_its_original_that_ocr_could_not_read_beyond_near_hashes():
    """Seen on a held-out set: a 1-pixel caption on flat colour that OCR read nothing on, and a
    crop of it that OCR read; the crop's hash moved 16 bits and the original had no words to be
    chosen by, so the two were never compared. A wordless picture the crop may be cut from is
    compared as a wordless crop's farther candidates are; one the crop is no part of (no larger,
    or far larger) is not."""
    from indexer.alignment import Difference

    def bits(n: int) -> str:
        return format((1 << n) - 1, "016x")

    said = "proud robot says the moon in the rain 30"
    close = Difference.of(0.0, 0.0, (1.0, 0.9), 0.41)
    for area, found in ((273 * 204, "flat"), (262 * 196, None), (600 * 450, None)):
        likeness = Likeness([("flat", bits(16), ["", ""], area)])
        assert likeness.find([bits(0)], said, lambda key: close, 262 * 196) == found, area


def test_the_sample_repost_becomes_a_sighting_of_its_meme(grouping, samples, cli):
    small = samples / "reposts" / "one-does-not-simply-small.jpg"
    os.utime(small, (time.time() - 86400 * 30,) * 2)  # the repost was seen a month before the original
    result = cli("index", samples, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new_memes"] == 9 and summary["new_sightings"] == 1
    original = json.loads(cli("show", samples / "one-does-not-simply.jpg", "--json").stdout)
    assert json.loads(cli("show", small, "--json").stdout)["id"] == original["id"]
    assert sorted(os.path.basename(s["path"]) for s in original["sightings"]) == [
        "one-does-not-simply-small.jpg", "one-does-not-simply.jpg"]
    assert original["first_seen"] == min(s["seen_at"] for s in original["sightings"])  # the earliest
    record = cli("show", original["id"]).stdout
    assert "one-does-not-simply-small.jpg" in record.split("Sightings")[1]
    rerun = json.loads(cli("index", samples, "--json").stdout)
    assert rerun["unchanged"] == 10 and rerun["memes_in_archive"] == 9


def test_a_word_or_a_number_either_caption_lacks_is_another_meme_whatever_the_pixels_say():
    number_17 = Caption.of(["GOOD MEME NUMBER 17 SAYS HELLO 3", "g00d meme nunber says"])
    number_18 = Caption.of(["GOOD MEME NUMBER 18 SAYS HELLO 3"])
    slip = Caption.of(["GOOD MEME NUMBER 17 SAYS HELL0 3"])
    watermarked = Caption.of(["GOOD MEME NUMBER 17 SAYS HELLO 3 imgflip.com memes"])
    assert number_17.disagrees(number_18) and not same_meme(0, number_17, number_18, pixels=0.0)
    assert not number_17.disagrees(slip) and same_meme(0, number_17, slip, pixels=0.0)  # an OCR slip
    assert not watermarked.disagrees(number_17)  # words on one side only: a mark, a border line
    assert Caption.of(["tiny wizard hears taxes"]).disagrees(Caption.of(["tiny teapot hears taxes"]))
    # the second engine's reading of texture ("sees", "ice") is not trusted to tell memes apart
    assert not Caption.of(["calm dragon breaks the keys", "sees ice"]).disagrees(
        Caption.of(["calm dragon breaks the keys", "eras"]))


def test_an_o_read_for_a_zero_after_digits_is_the_same_number():
    """A JPEG copy of a real meme: OCR read "35O" for "350", and word splitting made it "35 o"."""
    from indexer.ocr import restore_word_breaks

    original = Caption.of(restore_word_breaks(["MYCREDITSCOREIS350", "ATLEAST I DON'T HAVE TO WORRY"]))
    copy = Caption.of(restore_word_breaks(["MYCREDITSCOREIS35O", "ATLEAST I DON'T HAVE TO WORRY"]))
    assert "350" in copy.words and not copy.disagrees(original) and not original.disagrees(copy)
    assert not Caption.of("my score is 35O today").disagrees(Caption.of("my score is 350 today"))
    assert Caption.of("my score is 35 today").disagrees(Caption.of("my score is 350 today"))  # a number is a number
    assert Caption.of("my score is 35 on monday").disagrees(Caption.of("my score is 350 on monday"))


def test_a_short_word_or_number_is_said_only_as_a_word_of_its_own():
    """Where every word counts (the pixels barely tell two pictures apart), a short word or a
    number found inside the other caption's letters counted as said ("ha" in "that", "1" in
    "2021"), and siblings a short word apart agreed."""
    he, ha = Caption.of("that is what he said about the garden"), Caption.of("that is what ha said about the garden")
    assert he.disagrees(ha, every_word=True) and ha.disagrees(he, every_word=True)
    day_2, day_1 = Caption.of("day 2 of 2021 and i already gave up"), Caption.of("day 1 of 2021 and i already gave up")
    assert day_2.disagrees(day_1, every_word=True) and day_1.disagrees(day_2, every_word=True)
    # a number read in parts is the number ("9:41" / "941"), and a run OCR glued still says its words
    assert not Caption.of("the bus at 9:41 am").disagrees(Caption.of("the bus at 941 am"), every_word=True)
    assert not Caption.of("the bus at 941 am").disagrees(Caption.of("the bus at 9:41 am"), every_word=True)
    # where the pixels vouch, a number read in part on a small copy ("7" of "73") is no other number
    assert not Caption.of("lite at cts hiy tter a 7").disagrees(Caption.of("polite waffle counts shiny after lunch 73"))
    assert not Caption.of("that is what he said").disagrees(Caption.of("thatis what he said"), every_word=True)
    assert not Caption.of("day 2 of them").disagrees(Caption.of("day2 of them"), every_word=True)


def test_a_line_start_that_ocr_cut_puts_no_word_in_place_of_another():
    """A half-size copy of a dark text post: detection cut "balloon" to "oon" at its line's start,
    and joining the two lines' ends made "love" out of "lovesa" + "oon" in place of "balloon"."""
    from indexer.ocr import restore_word_breaks

    whole = Caption.of(restore_word_breaks(["brave wizard builds the wifi before work. tiny cactus loves a",
                                            "balloon at midnight"]))
    cut = Caption.of(restore_word_breaks(["brave wizard builds thewif before work. tiny cactus lovesa",
                                          "oon at midnight"]))
    assert not cut.disagrees(whole) and not whole.disagrees(cut)
    assert Caption.of("tiny cactus loves a love at midnight").disagrees(whole)  # a word put in its place


def test_a_word_with_more_than_a_slip_cut_off_or_repeated_is_another_word():
    """OCR loses letters at a word's edge and reads a word twice, but captions differ in just such
    words: loosening the rule for the first joined the second (a rule tried at stop 36)."""
    for word, other in (("safe", "unsafe"), ("done", "undone")):
        ours, theirs = Caption.of(f"this house is {word} at night"), Caption.of(f"this house is {other} at night")
        assert ours.disagrees(theirs) or theirs.disagrees(ours), (word, other)
    songs = Caption.of("my cat loves love songs at midnight")
    assert songs.disagrees(Caption.of("my cat loves happy songs at midnight"))
    assert Caption.of("the dog is very very tired today").disagrees(Caption.of("the dog is very much tired today"))


def test_a_word_replaced_inside_a_glued_run_of_words_is_another_word():
    """OCR glues a line of a text post into one token and indexing adds its split forms: where
    two posts differ in one word of that line, the glued runs are 85% alike, which is no slip."""
    ghost = "SleepyGhost sleepy ghost @sleepy_ghost sleepy ghost "
    cat = Caption.of(ghost + "nervouscathidesaballoononthecat.calmwizard nervous cat hides a balloon on the cat calm "
                     "wizard countsthekeyseverymorning counts the keys every morning")
    pigeon = Caption.of(ghost + "nervouspigeonhidesaballoononthetrain.calm nervous pigeon hides a balloon on the train "
                        "calm wizardcountsthekeyseverymorning wizard counts the keys every morning")
    slip = Caption.of(ghost + "nervouscathidesaba1loononthecat.calmwizard nervous cat hides a ba 1 loon on the cat "
                      "calm wizard countsthekeyseverymorning counts the keys every morning")
    assert cat.disagrees(pigeon, every_word=True) and pigeon.disagrees(cat, every_word=True)
    assert not same_meme(6, cat, pigeon)  # no pixels to compare: every word counts
    assert not cat.disagrees(slip, every_word=True) and not slip.disagrees(cat, every_word=True)
    walrus, misread = Caption.of("the walrus eats soup"), Caption.of("the walnus7 eats soup")
    assert not walrus.disagrees(misread, every_word=True)  # a short glued misreading stays a slip


def test_pixels_that_barely_tell_two_pictures_apart_leave_every_word_to_count():
    """A half-size copy of a small meme compared with another meme of its template may differ
    by no more than copies do where one short word differs: then the words decide."""
    rain = Caption.of("silly cat says a spoon in the rain")
    calm = Caption.of("silly cat says a spoon in the cam")  # "calm", read from a half-size copy
    assert same_meme(2, rain, calm, 0.02)  # clearly one picture: the pixels vouch for it
    assert not same_meme(2, rain, calm, 0.07)
    assert same_meme(2, rain, Caption.of("silly cat says a spoon in the rain"), 0.07)


def test_small_text_on_flat_colours_is_never_folded(grouping, tmp_path, cli):
    folder = tmp_path / "flat"
    folder.mkdir()
    flat_colour_memes(folder, 16)
    result = cli("index", folder, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new_memes"] == 16 and summary["memes_in_archive"] == 16, summary
    found = json.loads(cli("search", "number 11 says hello", "--json").stdout)["results"]
    assert os.path.basename(found[0]["path"]) == "good11.jpg"


def test_a_word_changed_in_faint_type_is_another_meme(grouping, tmp_path, cli):
    """Grey type 100 levels from its background (a muted theme): a changed word's strokes,
    blurred, differ by less than the 50 levels that dark-on-white type is held to, and a short
    one ("bus") the words do not count (under four letters). The pixels are held to half the
    type's own contrast: the four posts stay four memes, and a half-size copy still joins."""
    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set

    folder = tmp_path / "faint"
    folder.mkdir()
    colours = ((60, 60, 66), (160, 160, 166), (130, 130, 136))
    for n, text in enumerate(["proud hamster misses the bus on the train", "proud hamster misses the silly on the train",
                              "proud hamster finds the bus on the train", "proud robot misses the bus on the train"]):
        make_identity_set.post(text, "Quiet Goose", True, 560, 14, colours).save(folder / f"post-{n}.png")
    first = Image.open(folder / "post-0.png").convert("RGB")
    first.resize((first.width // 2, first.height // 2), Image.Resampling.LANCZOS).save(folder / "copy-half.jpg", quality=90)
    result = cli("index", folder, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["memes_in_archive"] == 4, summary
    shown = json.loads(cli("show", folder / "post-0.png", "--json").stdout)
    assert sorted(os.path.basename(s["path"]) for s in shown["sightings"]) == ["copy-half.jpg", "post-0.png"]


def test_a_word_changed_at_a_corners_edge_still_differs_in_the_pixels():
    """The corners, where sites paste marks, are measured apart, but a patch centred outside
    them still counts what differs inside, near their edge: a caption word across a top corner's
    edge, or just inside it ("cat" / "dog" before "is watching"), is not left to OCR alone (a
    draft that counted corner pixels apart measured 0 for the word just inside)."""
    from indexer.alignment import difference, features

    sys.path.insert(0, str(ROOT / "data"))
    from make_samples import REGULAR, photo

    def meme(word: str, x: int):
        img = photo(7, (640, 520))
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, 0, 640, 90], fill=(255, 255, 255))
        font = ImageFont.truetype(REGULAR, 20)
        draw.text((x, 30), word, fill=(0, 0, 0), font=font)
        draw.text((300, 30), "is watching", fill=(0, 0, 0), font=font)
        return img

    for x in (165, 150):  # across the edge (0.24), wholly inside it (0.11)
        assert difference(features(meme("cat", x)), features(meme("dog", x))) >= MAX_PIXEL_DIFFERENCE, x


def _evalset_module():
    sys.path.insert(0, str(ROOT / "data"))
    import make_evalset

    return make_evalset


def test_altered_copies_join_and_siblings_do_not(grouping, tmp_path, cli):
    evalset = _evalset_module()
    folder = tmp_path / "memes"
    folder.mkdir()
    picture = evalset.template_picture(3)
    memes = {}
    for n, (top, bottom) in enumerate(evalset.CAPTIONS[:3]):  # one template, three captions
        img = picture.copy()
        evalset.caption(img, top, "top")
        evalset.caption(img, bottom, "bottom")
        img.save(folder / f"sibling-{n}.jpg", quality=90)
        memes[n] = img
    rnd = random.Random(2)
    for name, copy in evalset.alterations(memes[0], rnd).items():
        copy.save(folder / f"copy-{name}.jpg", quality=35 if name == "jpeg" else 90)
    result = cli("index", folder, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["memes_in_archive"] == 3, summary
    first = json.loads(cli("show", folder / "sibling-0.jpg", "--json").stdout)
    assert sorted(os.path.basename(s["path"]) for s in first["sightings"]) == [
        "copy-border.jpg", "copy-crop.jpg", "copy-half.jpg", "copy-jpeg.jpg", "sibling-0.jpg"]
    others = {json.loads(cli("show", folder / f"sibling-{n}.jpg", "--json").stdout)["id"] for n in (1, 2)}
    assert len(others) == 2 and first["id"] not in others


def test_a_reading_that_lost_a_stretch_of_words_puts_no_other_word_there():
    """A half-size copy of a text post: detection cut a line's start ("@grumpy_sleepy_cat" read as
    "npy_cat", wordninja made "ycat" of it) or read a stretch as one slip ("ghosts" for "tiny ghost
    nervous goose"). What it says there is in what the original says there, so it read less, as
    where it read nothing; a word put in place of another still tells two memes apart."""
    whole = Caption.of("GrumpyCat grumpy cat @grumpy_cat grumpy cat sleepy knight ignores the bus during "
                       "meetings. fuzzy teapot forgets breakfast every morning 9:41 AM · Dec 3")
    cut = Caption.of("GrumpyCat grumpy cat npy_cat np ycat epy knight ignores the bus during meetings. fuzzy "
                     "teapot forgets breakfast every morning 9:41AM:Dec3 941 am dec 3")
    assert not whole.disagrees(cut) and not cut.disagrees(whole)
    post = Caption.of("TinyGhost tiny ghost @tiny_ghost tiny ghost nervous goose fixes a balloon after lunch. "
                      "nervous lunch nervous goose forgets taxes during meetings 9:41 AM - Dec 3")
    half = Caption.of("Tiny Ghost ghosts fixes b loon aft e lunch nerv us")
    assert not post.disagrees(half) and not half.disagrees(post)
    # what one says in place of the other's word is in no word the other says there
    assert Caption.of("grumpy cat hides the ball and finds it").disagrees(
        Caption.of("grumpy cat finds the ball and finds it"))
    assert Caption.of("grumpy cat brave knight ignores the bus").disagrees(
        Caption.of("grumpy cat sleepy knight ignores the bus"))
    # a review's siblings: a stretch of "a" or "the" holds no word ("says" is not in "a"), a slip
    # beside the changed word reads as much as the other ("bilds the wizard", "builds the bus"),
    # and a glued run is no stretch of its own (its split forms stand for it)
    for ours, theirs, every_word in (
            ("clever meme says a spoon in the rain", "clever meme hears a spoon in the rain", False),
            ("polite toaster eats the garden during meetings", "polite toaster eats the polite during meetings",
             False),
            ("lucky pirate builds the bus on fridays", "lucky pirate bilds the wizard on fridays", True),
            ("ANGRYGOOSEFIXES angry goose fixes the keys after lunch",
             "GOODGOOSEFIXES good goose fixes the keys after lunch", True),
            ("TINYCACTUSLOVES tiny cactus loves THEREMOTEDURING the remote during MEETINGS viathegroupchat via "
             "the group chat", "TINYCACTUSWANTS tiny cactus wants THEREMOTEDURING the remote during MEETINGS",
             False)):
        a, b = Caption.of(ours), Caption.of(theirs)
        assert a.disagrees(b, every_word) or b.disagrees(a, every_word), (ours, theirs)


def test_a_meme_whose_nearest_picture_cannot_be_aligned_is_compared_by_its_next():
    """A crop through a band caption, at the end of a run: its meme's nearest picture by hash is a
    framed copy that cannot be aligned with it (the frame and the crop scale it two ways), and a
    meme was looked at through one picture only, so the crop never met its own original."""
    from indexer.alignment import Difference

    area = 500 * 500
    likeness = Likeness([("gym", "00000000000fffff", "proud pigeon fixes the garden at the gym", area),
                         ("robot", "fffff00000000000", "proud pigeon fixes the garden at the robot", area)])
    likeness.add("gym", "0000000000003fff", "proud pigeon fixes the garden at the gym group chat", "framed", area)
    part = Difference.of(0.0, 0.0, (1.0, 0.88))  # all of the crop is in its original
    pixels = {"framed": None, "gym": part, "robot": Difference.of(0.3, 0.0, (1.0, 0.88))}
    crop = 430 * 390
    assert likeness.find(["0000000000000000"], ["", ""], pixels.get, area=crop, sole=True) == "gym"
    unaligned = {"framed": None, "gym": None, "robot": None}
    assert likeness.find(["0000000000000000"], ["", ""], unaligned.get, area=crop, sole=True) is None


def test_a_short_word_changed_in_a_text_post_stays_another_meme_in_its_small_copy():
    """A helper review's siblings: a text post's copy at 0.4-0.45 of its size against the post a
    short word or a digit apart ("he" / "ha", "day 2" / "day 1 of 2021"). The pixels must decide:
    each short word is found inside the other's letters ("ha" in "that", "1" in "2021"), so every
    word counted, the words agree. A limit raised at sharp edges for half-size copies of outlined
    captions (tried at stop 41) made these measure under BARELY, and joined them."""
    import io

    from archive.likeness import verdict
    from indexer.alignment import difference, features

    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set

    def small(img: Image.Image, scale: float) -> Image.Image:
        buf = io.BytesIO()
        img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC).save(
            buf, "JPEG", quality=90)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    for ours, theirs, scale in (("that is what he said about the garden", "that is what ha said about the garden", 0.45),
                                ("day 2 of 2021 and i already gave up", "day 1 of 2021 and i already gave up", 0.4)):
        post, other = (make_identity_set.post(text, "Lucky Goose", False, 640, 21) for text in (ours, theirs))
        copy = features(small(post, scale))
        assert verdict(0, Caption.of(ours), Caption.of(theirs), difference(copy, features(other))) == "different"


def test_a_crop_of_text_on_a_flat_colour_joins_its_original_though_its_hash_moved_far():
    """Seen on a held-out identity set: a 6% crop of one line of text on a flat colour moved the
    perceptual hash 30-40 bits (its few strokes are all the hash has), past MAX_DISTANCE, and the
    crop was never compared with its original. Pictures far by hash whose captions say half of
    its words are compared too, and where not a pixel differs (corners too, at a legible
    resolution), each covering FAR_COVERED of the other, they are one; a sibling a word apart
    stays another meme."""
    from archive.hashes import hash_array, nearest_distances
    from archive.likeness import MAX_DISTANCE
    from indexer.alignment import difference, features
    from indexer.imageio import picture_hashes

    sys.path.insert(0, str(ROOT / "data"))
    import make_identity_set

    texts = {"printer": "good pirate loves the printer at midnight 5",
             "remote": "good pirate loves the remote at midnight 5"}
    pictures = {key: make_identity_set.flat(text, random.Random(3), (381, 285), (90, 140, 200), False)
                for key, text in texts.items()}
    crop = pictures["printer"].crop((0, 0, 381 - 22, 285 - 17))
    hashes = {key: picture_hashes(img)[0] for key, img in pictures.items()}
    assert nearest_distances(picture_hashes(crop), hash_array([hashes["printer"]]))[0] > MAX_DISTANCE
    likeness = Likeness([(key, hashes[key], texts[key], 381 * 285) for key in texts])
    seen = {key: features(img) for key, img in pictures.items()}

    def pixels(key: str):
        return difference(features(crop), seen[key])

    assert likeness.find(picture_hashes(crop), texts["printer"], pixels, crop.width * crop.height) == "printer"
    assert likeness.find(picture_hashes(crop), texts["remote"], pixels, crop.width * crop.height,
                         exclude={"printer"}) is None
    # far by hash, only what matches exactly and covers most of the other: a text post aligned onto
    # a framed copy's white frame matched with nothing differing, covering 56% of it
    from archive.likeness import DIFFERENT, verdict
    from indexer.alignment import Difference

    words = Caption.of(texts["printer"])
    assert verdict(36, words, words, Difference.of(0.0, 0.0, (0.557, 1.0), 0.64)) == DIFFERENT
    assert verdict(36, words, words, Difference.of(0.02, 0.0, (1.0, 0.88), 0.64)) == DIFFERENT
    assert verdict(36, words, words, Difference.of(0.0, 0.0, (1.0, 0.88), 0.64)) != DIFFERENT


def test_a_letter_changed_in_small_type_on_a_large_card_is_another_meme():
    """A helper review's siblings: "my cat hates every single monday morning" and "... dates ...",
    14 px type on a 640 x 480 card. OCR's slips allow "dates" for "hates" (80% alike), and the
    changed letter fills 4% of a word-sized patch (under BARELY, where copies are): they were one
    meme. Over squares a letter wide it fills 17%, which no copy under BARELY reached (0.104).
    A JPEG copy at quality 30 is still the same picture."""
    import io

    from archive.likeness import DIFFERENT, SAME, verdict
    from indexer.alignment import difference, features

    sys.path.insert(0, str(ROOT / "data"))
    from make_samples import REGULAR, font

    def card(text: str) -> Image.Image:
        img = Image.new("RGB", (640, 480), (250, 250, 250))
        ImageDraw.Draw(img).text((40, 230), text, font=font(14, REGULAR), fill=(20, 20, 20))
        return img

    hates, dates = card("my cat hates every single monday morning"), card("my cat dates every single monday morning")
    buf = io.BytesIO()
    hates.save(buf, "JPEG", quality=30)
    copy = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    words = (Caption.of("my cat hates every single monday morning"),
             Caption.of("my cat dates every single monday morning"))
    assert not words[0].disagrees(words[1], every_word=True)  # the words cannot tell
    apart = difference(features(dates), features(hates))
    assert apart < BARELY and verdict(0, words[1], words[0], apart) == DIFFERENT
    assert verdict(0, words[0], words[0], difference(features(copy), features(hates))) == SAME
