"""vqgen.data.emoji: emoji-test.txt parsing, base keys and the split, framing on white, the build.

Never touches the real Noto font or the system's emoji-test.txt: a hand-written excerpt of emoji-test.txt
lives in tests/fixtures/emoji/, the build gets a fake renderer, and rendering is checked with Pillow's
bundled font and synthetic RGBA glyphs.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

import vqgen.data.emoji as emoji
from vqgen.data.emoji import EMOJI_GROUPS, EmojiEntry, EmojiRenderError
from vqgen.errors import ConfigError, DataError

FIXTURE = Path(__file__).parent / "fixtures" / "emoji" / "emoji-test.txt"
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
INSTALL = "apt-get install fonts-noto-color-emoji unicode-data"


def fake_renderer(skip: tuple[str, ...] = (ENGLAND,), fail_at: int | None = None, error=RuntimeError):
    """A stand-in for the font: a flat colour derived from the text; skips ``skip``; raises ``error`` on
    call number ``fail_at``."""
    calls = []

    def render(text: str, resolution: int) -> np.ndarray:
        calls.append(text)
        if fail_at is not None and len(calls) == fail_at:
            raise error("renderer broke mid-way")
        if text in skip:
            raise EmojiRenderError(f"no glyph for {text!r}")
        colour = np.frombuffer(hashlib.sha256(text.encode()).digest()[:3], dtype=np.uint8)
        return np.broadcast_to(colour, (resolution, resolution, 3)).copy()

    render.calls = calls
    return render


def build(output: Path, **kwargs) -> dict:
    kwargs.setdefault("renderer", fake_renderer())
    return emoji.build_emoji(output, resolution=16, progress=False, emoji_test_path=FIXTURE, **kwargs)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------------------------------------------------
# Groups and emoji-test.txt
# ---------------------------------------------------------------------------------------------------------


def test_groups_are_slugs_in_sorted_label_order():
    assert emoji.group_slug("Smileys & Emotion") == "smileys-emotion"
    assert emoji.group_slug("People & Body") == "people-body"
    assert emoji.group_slug("Flags") == "flags"
    assert {emoji.group_slug(name) for name in emoji.EMOJI_GROUP_NAMES.values()} == set(EMOJI_GROUPS)
    assert list(EMOJI_GROUPS) == sorted(EMOJI_GROUPS) and len(EMOJI_GROUPS) == 9
    assert EMOJI_GROUPS[0] == "activities" and EMOJI_GROUPS[-1] == "travel-places"


def test_parse_keeps_fully_qualified_emoji_without_components():
    entries = emoji.parse_emoji_test(FIXTURE)
    assert len(entries) == 38
    assert {e.group for e in entries} == set(emoji.EMOJI_GROUP_NAMES.values())  # no "Component"
    assert not any(c in (0x1F3FB, 0x1F9B0) and len(e.codepoints) == 1 for e in entries for c in e.codepoints)
    # Unqualified and minimally-qualified forms are dropped; the fully-qualified one is kept once.
    assert [e.name for e in entries].count("smiling face") == 1
    assert [e.name for e in entries].count("woman: blond hair") == 1
    assert not any(e.name == "eye in speech bubble" for e in entries)

    first = entries[0]
    assert first == EmojiEntry((0x1F600,), "grinning face", "Smileys & Emotion", "face-smiling", "1.0")
    assert first.text == "😀" and first.stem == "1f600" and first.group_slug == "smileys-emotion"
    smiling = next(e for e in entries if e.name == "smiling face")
    assert smiling.codepoints == (0x263A, 0xFE0F) and smiling.text == "☺️" and smiling.stem == "263a-fe0f"
    man = next(e for e in entries if e.name == "man: dark skin tone, red hair")
    assert (
        man.codepoints_hex == "1F468 1F3FF 200D 1F9B0" and man.subgroup == "person" and man.version == "11.0"
    )
    england = entries[-1]
    assert england.text == ENGLAND and england.group == "Flags" and england.subgroup == "subdivision-flag"
    assert len({e.stem for e in entries}) == len(entries)  # file names never collide


def test_parse_accepts_lines_without_an_emoji_version(tmp_path):
    path = tmp_path / "old.txt"
    path.write_text(
        "# group: Flags\n# subgroup: flag\n1F3C1 ; fully-qualified # 🏁 chequered flag\n", encoding="utf-8"
    )
    (entry,) = emoji.parse_emoji_test(path)
    assert entry.name == "chequered flag" and entry.version is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            "# group: Flags\n# subgroup: flag\n1F3C1 fully-qualified # 🏁 E0.6 chequered flag\n",
            "line 3 is malformed",
        ),
        (
            "# group: Flags\n# subgroup: flag\n1F3C1 ; qualified # 🏁 E0.6 chequered flag\n",
            "line 3 is malformed",
        ),
        ("# group: Flags\n# subgroup: flag\nflag ; fully-qualified # 🏁 E0.6 chequered flag\n", "line 3"),
        ("1F3C1 ; fully-qualified # 🏁 E0.6 chequered flag\n", "line 1 comes before any '# group:'"),
        ("# group: Flags\n# subgroup: x\n110000 ; fully-qualified # ? E0.6 nothing\n", "beyond U\\+10FFFF"),
        ("# emoji-test.txt\n# group: Flags\n", "no fully-qualified emoji"),
        ("# group: Component\n# subgroup: hair-style\n1F9B0 ; component # 🦰 E11.0 red hair\n", "no fully"),
    ],
)
def test_parse_refuses_a_malformed_file_in_one_line(tmp_path, content, match):
    path = tmp_path / "emoji-test.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match) as error:
        emoji.parse_emoji_test(path)
    assert str(path) in one_line(error)


def test_parse_refuses_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(DataError, match="does not exist") as error:
        emoji.parse_emoji_test(tmp_path / "missing.txt")
    assert "missing.txt" in one_line(error) and INSTALL in str(error.value)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read emoji test file") as error:
        emoji.parse_emoji_test(binary)
    one_line(error)


# ---------------------------------------------------------------------------------------------------------
# Base keys and the split
# ---------------------------------------------------------------------------------------------------------


def test_base_key_joins_skin_tone_and_hair_variants():
    keys = {e.name: emoji.base_key(e) for e in emoji.parse_emoji_test(FIXTURE)}
    assert {keys[f"waving hand: {tone} skin tone"] for tone in ("light", "medium", "dark")} == {"waving hand"}
    assert keys["waving hand"] == "waving hand"
    assert keys["man"] == keys["man: light skin tone"] == keys["man: red hair"] == "man"
    assert keys["man: dark skin tone, red hair"] == "man"
    # Mixed tones are made of other code points than the base: the name still joins them.
    assert keys["handshake: light skin tone, dark skin tone"] == keys["handshake"] == "handshake"
    assert keys["kiss: person, person, light skin tone, medium-light skin tone"] == keys["kiss"] == "kiss"
    assert keys["kiss: light skin tone"] == "kiss"
    # Qualifiers that are not skin-tone or hair components keep their own emoji.
    assert keys["woman: blond hair"] == "woman: blond hair"
    assert keys["flag: Germany"] == "flag: germany" and keys["flag: England"] == "flag: england"


def test_base_key_falls_back_to_code_points_for_unqualified_names():
    toned = EmojiEntry((0x261D, 0x1F3FB), "index pointing up toned", "People & Body", "hand-single-finger")
    assert emoji.base_key(toned) == "261d"
    hair = EmojiEntry((0x1F468, 0x1F3FF, 0x200D, 0x1F9B0, 0xFE0F), "odd", "People & Body", "person")
    assert emoji.base_key(hair) == "1f468"


def test_split_keeps_every_variant_of_an_emoji_together():
    entries = emoji.parse_emoji_test(FIXTURE)
    by_key: dict[str, set[str]] = {}
    for entry in entries:
        by_key.setdefault(emoji.base_key(entry), set()).add(emoji.split_of(entry))
    assert all(len(splits) == 1 for splits in by_key.values())
    assert len(by_key["waving hand"] | by_key["handshake"]) == 1


def test_split_is_a_fixed_hash_of_the_base_key():
    entries = {e.name: e for e in emoji.parse_emoji_test(FIXTURE)}
    # Pinned: these must not change across machines, Python versions or refactors (a changed salt or hash
    # would move emoji between train and test and silently invalidate every reported test score).
    pinned = {
        "grinning face": "train",
        "grinning face with big eyes": "test",
        "love-you gesture: medium skin tone": "test",
        "waving hand: dark skin tone": "train",
        "flag: Germany": "test",
        "moose": "test",
        "monkey face": "train",
    }
    assert {name: emoji.split_of(entries[name]) for name in pinned} == pinned
    digest = hashlib.sha256(b"vqgen-emoji-split-v1/moose").digest()
    assert int.from_bytes(digest[:8], "big") / 2**64 < 0.1

    many = [EmojiEntry((0x1F600,), f"emoji number {i}", "Symbols", "x") for i in range(4000)]
    fraction = sum(emoji.split_of(e) == "test" for e in many) / len(many)
    assert 0.085 < fraction < 0.115
    assert {emoji.split_of(e, 0.0) for e in many[:50]} == {"train"}
    assert {emoji.split_of(e, 1.0) for e in many[:50]} == {"test"}
    with pytest.raises(ConfigError, match="test_fraction"):
        emoji.split_of(many[0], 1.5)


# ---------------------------------------------------------------------------------------------------------
# Framing and rendering
# ---------------------------------------------------------------------------------------------------------


def test_square_on_white_centres_the_glyph_and_keeps_its_aspect():
    glyph = Image.new("RGBA", (40, 20), (0, 0, 255, 255))
    out = emoji.square_on_white(glyph, 40)
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    blue = np.all(out == (0, 0, 255), axis=-1)
    assert blue[10:30].all() and not blue[:10].any() and not blue[30:].any()
    assert (out[:10] == 255).all() and (out[30:] == 255).all()

    # "bbox" crops to the ink first: a 10 x 20 block in a corner ends up centred and filling the height.
    corner = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    corner.paste((200, 0, 0, 255), (0, 0, 10, 20))
    out = emoji.square_on_white(corner, 20, fit="bbox")
    red = np.all(out == (200, 0, 0), axis=-1)
    assert red[:, 5:15].all() and not red[:, :5].any() and not red[:, 15:].any()
    # "canvas" keeps the glyph where the font put it, at the font's scale.
    out = emoji.square_on_white(corner, 20, fit="canvas")
    assert np.abs(out[:3, :1].astype(int) - (200, 0, 0)).max() <= 3 and (out[10:, 10:] == 255).all()


def test_square_on_white_has_no_dark_fringes_when_downsampling():
    # A red disc with a soft edge on a transparent *black* canvas (what a fresh RGBA canvas holds): any
    # black bleeding into the edge would pull the red channel below 255.
    size = 136
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((50 - radius) / 4, 0, 1)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    rgba[alpha == 0, :3] = 0  # transparent black
    out = emoji.square_on_white(Image.fromarray(rgba, "RGBA"), 17)
    assert out.shape == (17, 17, 3)
    assert out[..., 0].min() >= 254  # red over white, never darker
    assert out[0].min() >= 245 and tuple(out[8, 8]) == (255, 0, 0)  # Lanczos rings by a few levels at most
    assert np.abs(out[..., 1].astype(int) - out[..., 2]).max() <= 1  # pure pink tints in between


def test_square_on_white_refuses_a_blank_glyph_and_bad_arguments():
    with pytest.raises(EmojiRenderError, match="blank"):
        emoji.square_on_white(Image.new("RGBA", (30, 30), (0, 0, 0, 0)), 16)
    glyph = Image.new("RGBA", (30, 30), (0, 0, 0, 255))
    with pytest.raises(ConfigError, match="resolution"):
        emoji.square_on_white(glyph, 4)
    with pytest.raises(ConfigError, match="fit"):
        emoji.square_on_white(glyph, 16, fit="stretch")


def test_render_emoji_draws_one_glyph_on_white_and_skips_what_it_cannot_draw():
    font = ImageFont.load_default(size=100)  # Pillow's bundled FreeType font: a stand-in for Noto
    if not isinstance(font, ImageFont.FreeTypeFont):
        pytest.skip("this Pillow has no FreeType support")
    out = emoji.render_emoji("A", font, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[:, 0].min() >= 245 and out[:, -1].min() >= 245  # white margins: centred, not touching
    assert out.min() < 64  # a monochrome font draws black
    assert out[..., 0].tolist() == out[..., 2].tolist()  # grey only
    assert emoji.render_emoji("A", font, 32, fit="bbox").min() < 64

    with pytest.raises(EmojiRenderError, match="no glyph"):
        emoji.render_emoji(" ", font, 32)
    with pytest.raises(EmojiRenderError, match="glyphs wide"):
        emoji.render_emoji("AAAA", font, 32)  # a sequence that did not join into one glyph

    class BrokenFont:
        def getbbox(self, text):
            raise OSError("invalid pixel size")

    with pytest.raises(EmojiRenderError, match="Pillow cannot draw .*invalid pixel size") as error:
        emoji.render_emoji("A", BrokenFont(), 32)
    one_line(error)


def test_load_emoji_font_refuses_missing_and_broken_files(tmp_path):
    with pytest.raises(DataError, match="does not exist") as error:
        emoji.load_emoji_font(tmp_path / "NotoColorEmoji.ttf")
    assert INSTALL in one_line(error)
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font at all")
    with pytest.raises(DataError, match="cannot open emoji font") as error:
        emoji.load_emoji_font(broken)
    one_line(error)


# ---------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------


def read_metadata(root: Path) -> list[dict]:
    with open(root / "metadata.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_build_writes_images_metadata_and_manifest(tmp_path, capsys):
    out = tmp_path / "emoji"
    renderer = fake_renderer()
    manifest = emoji.build_emoji(
        out, resolution=16, progress=True, emoji_test_path=FIXTURE, renderer=renderer
    )
    assert "emoji: wrote 25 train and 12 test images (1 skipped)" in capsys.readouterr().err
    assert len(renderer.calls) == 38

    rows = read_metadata(out)
    assert len(rows) == 37 and list(rows[0]) == list(emoji._METADATA_FIELDS)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert files == sorted(r["file"] for r in rows)
    entries = {e.stem: e for e in emoji.parse_emoji_test(FIXTURE)}
    for row in rows:
        split, group, name = row["file"].split("/")
        entry = entries[name.removesuffix(".png")]
        assert (split, group) == (emoji.split_of(entry), entry.group_slug) == (row["split"], row["group"])
        assert int(row["label"]) == EMOJI_GROUPS.index(group)
        assert row["emoji"] == entry.text and row["name"] == entry.name
        assert row["codepoints"] == entry.codepoints_hex and row["base_key"] == emoji.base_key(entry)
        assert row["subgroup"] == entry.subgroup and row["emoji_version"] == entry.version
        with Image.open(out / row["file"]) as image:
            assert image.mode == "RGB" and image.size == (16, 16)
            assert np.array_equal(np.asarray(image), fake_renderer()(entry.text, 16))
    waving = next(r for r in rows if r["name"] == "waving hand: medium skin tone")
    assert waving["file"] == "train/people-body/1f44b-1f3fd.png"
    assert not any(r["emoji"] == ENGLAND for r in rows)  # skipped, not written
    splits_per_key: dict[str, set[str]] = {}
    for row in rows:
        splits_per_key.setdefault(row["base_key"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_per_key.values())

    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["resolution"] == 16 and manifest["name"] == "emoji"
    assert list(manifest["groups"]) == list(EMOJI_GROUPS)
    counts = manifest["counts"]
    assert counts["total"] == 37 and counts["skipped"] == 1
    assert counts["train"]["images"] == 25 and counts["test"]["images"] == 12
    assert (
        counts["train"]["per_group"]["people-body"] == 17 and counts["test"]["per_group"]["people-body"] == 2
    )
    assert counts["train"]["per_group"]["flags"] == 1 and counts["test"]["per_group"]["flags"] == 2
    assert sum(counts["train"]["per_group"].values()) == 25
    assert counts["train"]["base_emoji"] == 13 and counts["test"]["base_emoji"] == 11
    assert manifest["skipped"] == [
        {
            "codepoints": "1F3F4 E0067 E0062 E0065 E006E E0067 E007F",
            "name": "flag: England",
            "reason": "no glyph for " + repr(ENGLAND),
        }
    ]
    sources = manifest["sources"]
    assert sources["font"] is None and manifest["parameters"]["renderer"] == "custom"
    assert sources["emoji_test"]["unicode_emoji_version"] == "15.0"
    assert sources["emoji_test"]["sha256"] == hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert manifest["parameters"]["fit"] == "canvas" and manifest["parameters"]["test_fraction"] == 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["emoji"]  # no temporary left behind


def test_build_reads_back_as_an_image_folder_with_stable_labels(tmp_path):
    out = tmp_path / "emoji"
    build(out)
    rows = read_metadata(out)
    for split, size in (("train", 25), ("test", 12)):
        dataset = emoji.load_emoji_dataset(split, root=out)
        assert len(dataset) == size and dataset.label_names == EMOJI_GROUPS
        assert dataset[0]["pixels"].shape == (3, 16, 16)
        label_of = {r["file"]: int(r["label"]) for r in rows}
        assert [label_of[p.relative_to(out).as_posix()] for p in dataset.files] == dataset.labels
    assert emoji.load_emoji_dataset("test", resolution=8, root=out)[0]["pixels"].shape == (3, 8, 8)
    assert emoji.emoji_split_root("test", out) == out / "test"
    with pytest.raises(ConfigError, match="split"):
        emoji.emoji_split_root("validation", out)
    with pytest.raises(DataError, match="not an emoji build"):
        emoji.emoji_split_root("train", tmp_path)


def test_build_refuses_without_the_font_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji, "EMOJI_FONT_PATHS", (str(tmp_path / "fonts" / "NotoColorEmoji.ttf"),))
    out = tmp_path / "out" / "emoji"
    with pytest.raises(DataError, match="^Noto Color Emoji not found") as error:
        emoji.build_emoji(out, emoji_test_path=FIXTURE, progress=False)
    assert one_line(error).endswith(INSTALL)
    with pytest.raises(DataError, match="emoji font .* does not exist") as error:
        emoji.build_emoji(out, font_path=tmp_path / "nope.ttf", emoji_test_path=FIXTURE, progress=False)
    assert INSTALL in one_line(error)
    assert list(tmp_path.iterdir()) == []


def test_build_refuses_without_emoji_test_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji, "EMOJI_TEST_PATHS", (str(tmp_path / "unicode" / "emoji-test.txt"),))
    out = tmp_path / "emoji"
    with pytest.raises(DataError, match="emoji-test.txt not found") as error:
        emoji.build_emoji(out, progress=False, renderer=fake_renderer())
    assert one_line(error).endswith(INSTALL)
    with pytest.raises(DataError, match="does not exist") as error:
        emoji.build_emoji(out, progress=False, emoji_test_path=tmp_path / "x.txt", renderer=fake_renderer())
    one_line(error)
    assert list(tmp_path.iterdir()) == []


def test_build_refuses_an_existing_output_unless_forced(tmp_path):
    out = tmp_path / "emoji"
    build(out)
    before = (out / "manifest.json").read_text()
    with pytest.raises(DataError, match="already built .*37 images at 16 px.*force=True") as error:
        build(out)
    one_line(error)
    assert (out / "manifest.json").read_text() == before

    manifest = emoji.build_emoji(
        out, resolution=8, progress=False, force=True, emoji_test_path=FIXTURE, renderer=fake_renderer()
    )
    assert manifest["resolution"] == 8
    with Image.open(out / "train" / "smileys-emotion" / "1f600.png") as image:
        assert image.size == (8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emoji"]  # the old build is gone, not kept aside

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(DataError, match="not an emoji build") as error:
        build(foreign)
    one_line(error)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build(empty)["counts"]["total"] == 37
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        build(a_file, force=True)


def test_an_interrupted_build_leaves_nothing_behind(tmp_path):
    out = tmp_path / "emoji"
    renderer = fake_renderer(fail_at=10)
    with pytest.raises(RuntimeError, match="mid-way"):
        build(out, renderer=renderer)
    assert len(renderer.calls) == 10
    assert list(tmp_path.iterdir()) == []  # neither the output nor a hidden temporary

    # A forced rebuild that is interrupted keeps the previous complete build as it was.
    build(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        build(out, force=True, renderer=fake_renderer(fail_at=20, error=KeyboardInterrupt))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["emoji"]


def test_build_refuses_bad_renderer_output_and_arguments(tmp_path):
    out = tmp_path / "emoji"
    with pytest.raises(DataError, match=r"returned float64 \[16, 16, 3\].*expected uint8 \[16, 16, 3\]"):
        build(out, renderer=lambda text, resolution: np.zeros((resolution, resolution, 3)))
    with pytest.raises(DataError, match="only one split"):
        build(out, test_fraction=1e-12)  # every emoji in train: the test split would lack classes
    for bad in ({"resolution": 4}, {"resolution": 64.0}, {"fit": "stretch"}, {"test_fraction": 0.0}):
        with pytest.raises(ConfigError):
            emoji.build_emoji(out, progress=False, emoji_test_path=FIXTURE, renderer=fake_renderer(), **bad)
    assert list(tmp_path.iterdir()) == []


def test_emoji_root_mirrors_spoken_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path / "data"))
    root = emoji.emoji_root(must_exist=False)
    assert root == tmp_path / "data" / "emoji"
    with pytest.raises(DataError, match="demo:emoji has not been built .*vqgen data build emoji") as error:
        emoji.emoji_root()
    one_line(error)
    with pytest.raises(DataError, match="has not been built"):
        emoji.emoji_split_root("train")

    emoji.build_emoji(None, resolution=16, progress=False, emoji_test_path=FIXTURE, renderer=fake_renderer())
    assert emoji.emoji_root() == root and (root / "manifest.json").is_file()
    assert emoji.emoji_split_root("test") == root / "test"
    assert len(emoji.load_emoji_dataset("train")) == 25

    monkeypatch.delenv("VQGEN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert emoji.emoji_root(must_exist=False) == tmp_path / "cache" / "vqgen" / "emoji"
