"""Synthetic captioning scenes with compositional captions, and a score that reads the captions back.

A scene holds one or two groups of objects on a textured background; a group is a count (one to three) of objects
of one colour and one shape at one position. Its caption names each group in a fixed grammar:

    a red circle on the left
    two blue squares at the top and a yellow star at the bottom
    three green triangles in the middle

Compositional generalisation (the "systematic" split of CLEVR-CoGenT, Johnson et al. 2017, and of SCAN, Lake &
Baroni 2018): `split_pairs` holds out 6 of the 32 (colour, shape) pairs, spread so that every colour and every shape
still appears in training with other partners. Training scenes contain no held-out pair; validation scenes contain
one in at least one group, so a captioner must combine a colour and a shape it has only seen apart.

`attribute_score` parses a caption back into groups and counts how many of the 4 attributes (count, colour, shape,
position) of each true group it names; `attribute_rates` gives the overall share and one share per attribute.

Needs numpy and Pillow only.
"""

from __future__ import annotations

import colorsys
import json
import math
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 80, 235),
    "yellow": (245, 220, 30),
    "purple": (145, 45, 195),
    "orange": (250, 135, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
PLURALS: dict[str, str] = {shape: shape + "s" for shape in SHAPES}
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
# "an" is what `caption` writes before "orange"; "one" is read as well.
_COUNT_READ: dict[str, int] = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
POSITIONS: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}
# The positions of two groups, in caption order: group A, then group B.
PAIRED_POSITIONS: tuple[tuple[str, str], ...] = (("left", "right"), ("top", "bottom"))
BACKGROUNDS: tuple[str, ...] = ("noise", "stripes", "checker", "gradient")
ATTRIBUTES: tuple[str, ...] = ("count", "colour", "shape", "position")
ALL_PAIRS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)
N_HELD = 6

_PHRASE_TO_POSITION = {phrase: key for key, phrase in POSITIONS.items()}
_SHAPE_READ = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}


@dataclass(frozen=True)
class Group:
    """`count` (1-3) objects of one `colour` and `shape` at one `position` (a key of `POSITIONS`)."""

    count: int
    colour: str
    shape: str
    position: str

    def __post_init__(self) -> None:
        if self.count not in COUNT_WORDS:
            raise ValueError(f"a group's count is 1, 2 or 3, got {self.count!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {list(COLOURS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {list(SHAPES)}")
        if self.position not in POSITIONS:
            raise ValueError(
                f"unknown position {self.position!r}; expected one of {list(POSITIONS)}"
            )

    @property
    def pair(self) -> tuple[str, str]:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class Scene:
    """One or two groups (two: left then right, or top then bottom) on a `background` of one of `BACKGROUNDS`;
    `seed` seeds `render` when it is given no generator, so a scene alone fixes its image."""

    groups: tuple[Group, ...]
    background: str
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        if len(self.groups) not in (1, 2):
            raise ValueError(f"a scene has 1 or 2 groups, got {len(self.groups)}")
        if len(self.groups) == 2:
            a, b = self.groups
            if (a.position, b.position) not in PAIRED_POSITIONS:
                raise ValueError(
                    f"two groups are at {PAIRED_POSITIONS}, got ({a.position!r}, {b.position!r})"
                )
            if a.pair == b.pair:
                raise ValueError(f"two groups of a scene share both colour and shape {a.pair}")
        if self.background not in BACKGROUNDS:
            raise ValueError(
                f"unknown background {self.background!r}; expected one of {list(BACKGROUNDS)}"
            )

    def to_dict(self) -> dict:
        return {
            "groups": [asdict(g) for g in self.groups],
            "background": self.background,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        return cls(tuple(Group(**g) for g in data["groups"]), data["background"], int(data["seed"]))


@dataclass(frozen=True)
class ParsedGroup:
    """What one " and "-separated part of a caption names; None where a word is missing or unknown."""

    count: int | None
    colour: str | None
    shape: str | None
    position: str | None


def _group_text(group: Group) -> str:
    shape = group.shape if group.count == 1 else PLURALS[group.shape]
    count = COUNT_WORDS[group.count]
    if group.count == 1 and group.colour[0] in "aeiou":
        count = "an"
    return f"{count} {group.colour} {shape} {POSITIONS[group.position]}"


def caption(scene: Scene) -> str:
    """The caption of a scene: its groups in order (left then right, top then bottom) joined by " and "."""
    return " and ".join(_group_text(g) for g in scene.groups)


def _normalise(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".").split())


def parse(text: str) -> list[ParsedGroup]:
    """The groups a caption names, read in the caption grammar COUNT COLOUR SHAPE POSITION per " and " part.

    Each slot is read in order and is optional: a word that is not of the slot's kind leaves the slot None and is
    offered to the next slot, so a caption that leaves out a colour loses only the colour. The position is what
    remains of the part after the shape, and must be one of the `POSITIONS` phrases.
    """
    parts = [p for p in _normalise(text).split(" and ") if p]
    out = []
    for part in parts:
        words = part.split()
        count = _COUNT_READ.get(words[0]) if words else None
        words = words[int(count is not None) :]
        colour = words[0] if words and words[0] in COLOURS else None
        words = words[int(colour is not None) :]
        shape = _SHAPE_READ.get(words[0]) if words else None
        words = words[int(shape is not None) :]
        position = _PHRASE_TO_POSITION.get(" ".join(words))
        out.append(ParsedGroup(count, colour, shape, position))
    return out


def attribute_hits(text: str, scene: Scene) -> dict[str, int]:
    """How many true groups have each attribute named right: the i-th parsed part is matched to the i-th group,
    extra parts are ignored and a missing part names nothing."""
    parsed = parse(text)
    hits = dict.fromkeys(ATTRIBUTES, 0)
    for group, guess in zip(scene.groups, parsed):
        for name in ATTRIBUTES:
            hits[name] += int(getattr(guess, name) == getattr(group, name))
    return hits


def attribute_score(text: str, scene: Scene) -> tuple[int, int]:
    """(attributes named right, 4 x the number of groups) for a caption of `scene`."""
    return sum(attribute_hits(text, scene).values()), len(ATTRIBUTES) * len(scene.groups)


def attribute_rates(texts: Sequence[str], scenes: Sequence[Scene]) -> dict[str, float]:
    """The share of attributes named right over all captions (`overall`) and per attribute (count, colour, shape,
    position), each over the true groups of `scenes`."""
    if len(texts) != len(scenes):
        raise ValueError(f"{len(texts)} captions for {len(scenes)} scenes")
    if not scenes:
        raise ValueError("attribute_rates needs at least one scene")
    hits = dict.fromkeys(ATTRIBUTES, 0)
    n_groups = 0
    for text, scene in zip(texts, scenes):
        for name, n in attribute_hits(text, scene).items():
            hits[name] += n
        n_groups += len(scene.groups)
    rates = {"overall": sum(hits.values()) / (len(ATTRIBUTES) * n_groups)}
    rates.update({name: hits[name] / n_groups for name in ATTRIBUTES})
    return rates


def split_pairs(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train pairs, held-out pairs): 6 of the 32 (colour, shape) pairs held out, on 6 different colours and at
    most 2 per shape, so every colour keeps 3 training shapes and every shape at least 6 training colours."""
    rng = random.Random(seed)
    colours = rng.sample(list(COLOURS), N_HELD)
    # Each shape once, then two more different ones: 2, 2, 1, 1 held-out pairs per shape.
    shapes = list(SHAPES) + rng.sample(list(SHAPES), N_HELD - len(SHAPES))
    rng.shuffle(shapes)
    held = sorted(zip(colours, shapes), key=ALL_PAIRS.index)
    train = [p for p in ALL_PAIRS if p not in held]
    return train, held


def random_scene(
    rng: np.random.Generator,
    *,
    pairs: Collection[tuple[str, str]],
    required: Collection[tuple[str, str]] | None = None,
    two_groups: float = 0.5,
) -> Scene:
    """A random scene whose every (colour, shape) pair is in `pairs`.

    Args:
        rng: draws everything (groups, positions, background, the render seed).
        pairs: the (colour, shape) pairs the groups may have.
        required: if given, at least one group's pair is in it (and every pair in `pairs` or `required`).
        two_groups: the probability of two groups rather than one.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("random_scene needs at least one (colour, shape) pair")
    for pair in pairs + list(required or []):
        if pair not in ALL_PAIRS:
            raise ValueError(f"unknown (colour, shape) pair {pair!r}")
    n = 2 if rng.random() < two_groups else 1
    if n == 2 and len(set(pairs) | set(required or [])) < 2:
        raise ValueError("two groups need at least two different (colour, shape) pairs")
    positions = (
        PAIRED_POSITIONS[rng.integers(len(PAIRED_POSITIONS))]
        if n == 2
        else (list(POSITIONS)[rng.integers(len(POSITIONS))],)
    )
    while True:
        chosen = [pairs[rng.integers(len(pairs))] for _ in range(n)]
        if required:
            options = list(required)
            chosen[rng.integers(n)] = options[rng.integers(len(options))]
        if n == 1 or chosen[0] != chosen[1]:
            break
    groups = tuple(
        Group(int(rng.integers(1, 4)), colour, shape, position)
        for (colour, shape), position in zip(chosen, positions)
    )
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    return Scene(groups, background, int(rng.integers(2**31)))


# --- rendering --------------------------------------------------------------------------------------------------

EDGE = (
    0.06  # the share of the side kept free at the image edges (random training crops cut up to 1/9)
)
GAP = 0.06  # the share of the side kept free on each side of the midline between two halves
SUPERSAMPLE = 4  # objects are drawn at 4x and box-filtered down: smooth edges at 64-96 px
# The circumradius of each shape in units of the object size s (circle: diameter s; square: side 0.9 s; triangle:
# side 1.1 s; star: outer radius 0.6 s), so the four look about as large.
_RADIUS = {"circle": 0.5, "square": 0.9 / math.sqrt(2), "triangle": 1.1 / math.sqrt(3), "star": 0.6}


def _tone(rng: np.random.Generator, hue: float, value: float) -> np.ndarray:
    """A muted RGB tone in [0, 1]: saturation at most 0.22."""
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.0, 0.22), value))


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """float (size, size, 3) in [0, 1]: a blend of two muted tones (value 0.45-0.8) by a texture of `kind`."""
    hue = rng.random()
    v1 = rng.uniform(0.45, 0.8)
    v2 = rng.uniform(0.45, 0.8)
    while abs(v1 - v2) < 0.1:  # a texture that can be seen
        v2 = rng.uniform(0.45, 0.8)
    c1 = _tone(rng, hue, v1)
    c2 = _tone(rng, hue + rng.uniform(-0.1, 0.1), v2)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)  # (size, size) each, in pixels
    angle = rng.uniform(0, math.pi)
    along = x * math.cos(angle) + y * math.sin(angle)
    if kind == "noise":
        from PIL import Image

        cells = int(rng.integers(3, 8))
        grid = rng.random((cells, cells)).astype(np.float32)
        t = np.asarray(Image.fromarray(grid, "F").resize((size, size), Image.BICUBIC))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "stripes":
        period = rng.uniform(size / 12, size / 4)
        wave = np.sin(2 * math.pi * along / period + rng.uniform(0, 2 * math.pi))
        t = np.clip(0.5 + 0.5 * wave * rng.uniform(1, 4), 0, 1)  # from soft waves to hard stripes
    elif kind == "checker":
        cell = rng.uniform(size / 16, size / 6)
        across = -x * math.sin(angle) + y * math.cos(angle)
        t = (np.floor(along / cell) + np.floor(across / cell)) % 2
    elif kind == "gradient":
        t = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    else:
        raise ValueError(f"unknown background {kind!r}; expected one of {list(BACKGROUNDS)}")
    image = (1 - t[..., None]) * c1 + t[..., None] * c2  # (size, size, 3)
    image += rng.normal(0, 0.015, image.shape)  # a little grain
    return np.clip(image, 0, 1)


def _region(position: str, size: int) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in pixels: the box the objects of a group at `position` lie in."""
    lo, hi = EDGE * size, (1 - EDGE) * size
    left, right = (0.5 - GAP) * size, (0.5 + GAP) * size
    return {
        "left": (lo, left, lo, hi),
        "right": (right, hi, lo, hi),
        "top": (lo, hi, lo, left),
        "bottom": (lo, hi, right, hi),
        "middle": (0.2 * size, 0.8 * size, 0.2 * size, 0.8 * size),
    }[position]


def _layout(
    group: Group, size: int, rng: np.random.Generator, *, alone: bool
) -> list[tuple[float, float, float]]:
    """(x, y, object size s) of each object of `group`, in pixels, none overlapping (circumscribed circles apart).

    A group alone in its scene is moved so that it is centred along the axis its position does not name (a lone
    group "on the left" sits halfway down, not in a corner that "at the top" would fit as well); a group "in the
    middle" is centred both ways.
    """
    x0, x1, y0, y1 = _region(group.position, size)
    pad = size / 48
    shrink = 1.0
    for attempt in range(400):
        if attempt and attempt % 50 == 0:
            shrink *= 0.92  # rarely needed: three large objects that do not fit
        placed: list[tuple[float, float, float]] = []
        for _ in range(group.count):
            s = rng.uniform(size / 6, size / 4.5) * shrink
            r = _RADIUS[group.shape] * s
            for _ in range(30):
                x, y = rng.uniform(x0 + r, x1 - r), rng.uniform(y0 + r, y1 - r)
                if all(
                    math.hypot(x - px, y - py) >= r + _RADIUS[group.shape] * ps + pad
                    for px, py, ps in placed
                ):
                    placed.append((x, y, s))
                    break
            else:
                break
        if len(placed) == group.count:
            break
    else:
        raise RuntimeError(f"cannot place {group.count} objects of size >= {size / 6 * shrink:.1f}")
    if alone or group.position == "middle":
        radii = [_RADIUS[group.shape] * s for _, _, s in placed]
        lo_x = min(x - r for (x, _, _), r in zip(placed, radii))
        hi_x = max(x + r for (x, _, _), r in zip(placed, radii))
        lo_y = min(y - r for (_, y, _), r in zip(placed, radii))
        hi_y = max(y + r for (_, y, _), r in zip(placed, radii))
        jitter = 0.04 if group.position == "middle" else 0.1
        dx = dy = 0.0
        if group.position in ("top", "bottom", "middle"):
            target = size * (0.5 + rng.uniform(-jitter, jitter))
            dx = float(
                np.clip(target - (lo_x + hi_x) / 2, EDGE * size - lo_x, (1 - EDGE) * size - hi_x)
            )
        if group.position in ("left", "right", "middle"):
            target = size * (0.5 + rng.uniform(-jitter, jitter))
            dy = float(
                np.clip(target - (lo_y + hi_y) / 2, EDGE * size - lo_y, (1 - EDGE) * size - hi_y)
            )
        placed = [(x + dx, y + dy, s) for x, y, s in placed]
    return placed


def _polygon(shape: str, x: float, y: float, s: float, turn: float) -> list[tuple[float, float]]:
    """The corners of a square, triangle (pointing up) or five-pointed star of size `s` turned by `turn`."""
    r = _RADIUS[shape] * s
    if shape == "square":
        angles = [turn + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        return [(x + r * math.cos(a), y + r * math.sin(a)) for a in angles]
    if shape == "triangle":
        angles = [turn - math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        return [(x + r * math.cos(a), y + r * math.sin(a)) for a in angles]
    points = []
    for k in range(10):
        a = turn - math.pi / 2 + k * math.pi / 5
        radius = r if k % 2 == 0 else 0.45 * r
        points.append((x + radius * math.cos(a), y + radius * math.sin(a)))
    return points


def render(scene: Scene, size: int = 96, *, rng: np.random.Generator | None = None):
    """The scene as an RGB `PIL.Image` of size x size pixels.

    Args:
        scene: what to draw.
        size: the side in pixels (at least 32).
        rng: draws the background texture, the object sizes, places, turns and colour jitter; None: a generator
            seeded with `scene.seed`, so that the scene alone fixes the image.

    Returns:
        PIL.Image.Image, mode RGB, size x size.
    """
    from PIL import Image, ImageDraw

    if size < 32:
        raise ValueError(f"scenes are rendered at size >= 32, got {size}")
    rng = rng if rng is not None else np.random.default_rng(scene.seed)
    background = (_background(scene.background, size, rng) * 255).round().astype(np.uint8)
    k = SUPERSAMPLE
    canvas = Image.fromarray(background, "RGB").resize((size * k, size * k), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for group in scene.groups:
        base = np.array(COLOURS[group.colour], dtype=np.float64)
        for x, y, s in _layout(group, size, rng, alone=len(scene.groups) == 1):
            fill = tuple(int(v) for v in np.clip(base + rng.uniform(-12, 12, 3), 0, 255).round())
            outline = tuple(int(v * 0.55) for v in fill)
            width = max(1, round(k * size / 96))  # about 1 pixel after the box filter
            turn = math.radians(rng.uniform(-12, 12))
            if group.shape == "circle":
                r = _RADIUS["circle"] * s * k
                box = (x * k - r, y * k - r, x * k + r, y * k + r)
                draw.ellipse(box, fill=fill, outline=outline, width=width)
            else:
                corners = [(px * k, py * k) for px, py in _polygon(group.shape, x, y, s, turn)]
                draw.polygon(corners, fill=fill, outline=outline, width=width)
    return canvas.resize((size, size), Image.BOX)


# --- files ------------------------------------------------------------------------------------------------------


def load_scenes(path: str | Path) -> list[Scene]:
    """The scenes of a .jsonl file with one object per line holding `groups`, `background` and `seed` (the
    valid.jsonl that scripts/make_scenes.py writes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene file {path} does not exist")
    scenes = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            scenes.append(Scene.from_dict(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: not a scene ({exc})") from None
    return scenes


def held_out_in(scene: Scene, held: Iterable[tuple[str, str]]) -> bool:
    """Whether some group of `scene` has one of the `held` (colour, shape) pairs."""
    held = set(held)
    return any(g.pair in held for g in scene.groups)
