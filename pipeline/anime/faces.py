"""A procedural stand-in for an anime-face set: frontal faces drawn with PIL, with attribute labels.

No anime face set can be shipped or downloaded here, so the project draws one: face shape, skin tone,
hair colour and style (fringe, side locks, long hair or twin tails, a shine band), eye colour and size
with highlights and lashes, brows, nose, mouth (closed or open), blush, clothes and background. Each
face is drawn at ``supersample`` times the target size and downscaled with a Lanczos filter (anti-aliased
ink lines). Face ``i`` of seed ``s`` depends on ``(s, i)`` only, so any subset is reproducible.

It is a stand-in, not anime art: flat colours, one pose, one drawing style. The classify stage reports
which share of it the real detector (animeface) finds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from pipeline.anime.params import ATTRIBUTES

# Base colours; every face jitters them. Hair colour is the default class attribute.
HAIR = {"black": (38, 34, 46), "brown": (118, 70, 38), "blonde": (240, 208, 118), "red": (196, 48, 42),
        "blue": (58, 98, 208), "pink": (242, 148, 188)}
EYES = {"blue": (40, 110, 220), "green": (36, 150, 72), "red": (196, 38, 48), "brown": (128, 78, 38),
        "purple": (128, 58, 188)}
STYLES = ("short", "long", "twintails")
INK = (28, 20, 26)


@dataclass(frozen=True)
class FaceAttributes:
    hair: str
    eyes: str
    style: str
    mouth: str  # "closed" or "open"
    blush: str  # "yes" or "no"


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], sd: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v + rng.normal(0, sd), 0, 255)) for v in rgb)  # type: ignore[return-value]


def _shade(rgb: tuple[int, ...], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * f, 0, 255)) for v in rgb)  # type: ignore[return-value]


class _Canvas:
    """Face-relative drawing: x in [-1, 1] across the face width; y = 0 near the brow line, 1 at the chin."""

    def __init__(self, im: Image.Image, cx: float, top: float, fw: float, fh: float, ink: int) -> None:
        self.im, self.d = im, ImageDraw.Draw(im)
        self.cx, self.top, self.fw, self.fh, self.ink = cx, top, fw, fh, ink

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.cx + x * self.fw / 2, self.top + y * self.fh)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*self.p(x0, y0), *self.p(x1, y1)]

    def ellipse(self, box: list[float], fill, outline: bool = True) -> None:
        self.d.ellipse(box, fill=fill, outline=INK if outline else None, width=self.ink if outline else 0)

    def polygon(self, pts: list[tuple[float, float]], fill, outline: bool = True) -> None:
        self.d.polygon(pts, fill=fill, outline=INK if outline else None, width=self.ink if outline else 0)


def _sample_attributes(rng: np.random.Generator) -> FaceAttributes:
    return FaceAttributes(hair=list(HAIR)[rng.integers(len(HAIR))], eyes=list(EYES)[rng.integers(len(EYES))],
                          style=STYLES[rng.integers(len(STYLES))], mouth="open" if rng.random() < 0.35 else "closed",
                          blush="yes" if rng.random() < 0.5 else "no")


def _back_hair(c: _Canvas, a: FaceAttributes, hair: tuple) -> None:
    dark = _shade(hair, 0.78)
    if a.style == "long":
        c.polygon([c.p(-1.3, 0.1), c.p(1.3, 0.1), c.p(1.42, 1.8), c.p(-1.42, 1.8)], dark)
    elif a.style == "twintails":
        for s in (-1, 1):
            c.ellipse(c.box(s * 1.25 - 0.38, -0.05, s * 1.25 + 0.38, 1.45), dark)
    c.ellipse(c.box(-1.28, -0.62, 1.28, 0.9), dark)  # back of the head


def _face_and_neck(c: _Canvas, skin: tuple, cloth: tuple) -> None:
    c.polygon([c.p(-0.3, 0.8), c.p(0.3, 0.8), c.p(0.32, 1.2), c.p(-0.32, 1.2)], _shade(skin, 0.9))
    c.ellipse(c.box(-1.45, 1.12, 1.45, 2.6), cloth)
    chin = [c.p(-1, 0.35), c.p(1, 0.35), c.p(0.62, 0.82), c.p(0, 1.0), c.p(-0.62, 0.82)]
    c.ellipse(c.box(-1, -0.35, 1, 0.75), skin)
    c.polygon(chin, skin)
    c.ellipse(c.box(-0.985, -0.335, 0.985, 0.735), skin, outline=False)  # hide the seam between the two
    c.polygon([c.p(-0.98, 0.36), c.p(0.98, 0.36), c.p(0.6, 0.8)], skin, outline=False)
    c.polygon([c.p(-0.98, 0.36), c.p(-0.6, 0.8), c.p(0.6, 0.8)], skin, outline=False)


def _front_hair(c: _Canvas, a: FaceAttributes, hair: tuple, rng: np.random.Generator) -> None:
    # side locks framing the face; longer for long hair
    low = 0.95 if a.style == "long" else 0.7
    for s in (-1, 1):
        c.polygon([c.p(s * 1.2, -0.2), c.p(s * 0.82, -0.1), c.p(s * 0.86, low * 0.8), c.p(s * 1.02, low + 0.1),
                   c.p(s * 1.16, low * 0.6)], hair)
    # crown and fringe: pointed locks hanging to the brow line
    c.d.chord(c.box(-1.2, -0.62, 1.2, 0.3), 180, 360, fill=hair, outline=INK, width=c.ink)
    n = int(rng.integers(5, 8))
    edges = np.linspace(-1.12, 1.12, n + 1)
    depth = rng.uniform(-0.02, 0.08)
    pts = [c.p(-1.18, -0.2), c.p(-1.2, -0.34)] + [c.p(x, -0.46 + 0.12 * x * x) for x in np.linspace(-1, 1, 9)]
    pts += [c.p(1.2, -0.34), c.p(1.18, -0.2)]
    tips = []
    for i in range(n, 0, -1):
        mid = (edges[i] + edges[i - 1]) / 2 + rng.normal(0, 0.05)
        tip = c.p(mid, depth + rng.normal(0, 0.05) - 0.1 * abs(mid))
        pts += [tip, c.p(edges[i - 1], -0.2 + 0.05 * rng.normal())]
        tips.append(tip)
    c.polygon(pts, hair)
    crown = c.p(rng.normal(0, 0.1), -0.55)
    for tip in tips[1:-1]:  # strand lines from the crown toward the lock tips
        mid = ((crown[0] + 2 * tip[0]) / 3, (crown[1] + 2 * tip[1]) / 3)
        c.d.line([mid, tip], fill=_shade(hair, 0.45), width=max(1, c.ink // 2))
    c.d.arc(c.box(-0.75, -0.5, 0.75, -0.05), 205, 335, fill=_shade(hair, 1.35), width=c.ink * 2)  # shine


def _eyes(c: _Canvas, eye: tuple, hair: tuple, rng: np.random.Generator) -> None:
    ew, eh = rng.uniform(0.34, 0.42), rng.uniform(0.3, 0.38)  # eye width (face-x units), height (face-y)
    ex, ey = rng.uniform(0.42, 0.5), rng.uniform(0.36, 0.42)
    for s in (-1, 1):
        x0, y0, x1, y1 = c.box(s * ex - ew / 2, ey - eh / 2, s * ex + ew / 2, ey + eh / 2)
        w, h = x1 - x0, y1 - y0
        c.d.ellipse([x0, y0, x1, y1], fill=(255, 255, 255))
        c.d.ellipse([x0 + w * 0.14, y0 + h * 0.04, x1 - w * 0.14, y1], fill=eye, outline=INK, width=max(1, c.ink // 2))
        c.d.ellipse([x0 + w * 0.3, y0 + h * 0.28, x1 - w * 0.3, y1 - h * 0.14], fill=_shade(eye, 0.3))
        c.d.ellipse([x0 + w * 0.24, y0 + h * 0.14, x0 + w * 0.52, y0 + h * 0.42], fill=(255, 255, 255))
        c.d.ellipse([x1 - w * 0.4, y1 - h * 0.36, x1 - w * 0.26, y1 - h * 0.22], fill=(255, 255, 255))
        lash = [(x0 - w * 0.12, y0 + h * 0.32), (x0 + w * 0.22, y0 + h * 0.02), (x1 - w * 0.2, y0 - h * 0.02),
                (x1 + w * 0.12, y0 + h * 0.2)]
        if s > 0:  # mirror so the lash flick points outward on both eyes
            lash = [(x0 + x1 - px, py) for px, py in lash]
        c.d.line(lash, fill=INK, width=c.ink * 2, joint="curve")
        c.d.line([(x0 + w * 0.2, y1), (x1 - w * 0.2, y1)], fill=INK, width=max(1, c.ink // 2))
        bx = s * ex
        c.d.line([c.p(bx - s * ew * 0.45, ey - eh * 0.85), c.p(bx + s * ew * 0.4, ey - eh * 0.95)],
                 fill=_shade(hair, 0.5), width=c.ink)


def _mouth_and_blush(c: _Canvas, a: FaceAttributes, skin: tuple) -> Image.Image:
    nx, ny = c.p(0.03, 0.66)
    c.d.line([(nx, ny), (nx - c.fw * 0.03, ny + c.fh * 0.04)], fill=_shade(skin, 0.6), width=max(1, c.ink // 2))
    mx, my = c.p(0, 0.83)
    mw = c.fw * 0.16
    if a.mouth == "open":
        c.d.chord([mx - mw / 2, my - mw * 0.3, mx + mw / 2, my + mw * 0.5], 0, 180, fill=(172, 52, 62),
                  outline=INK, width=max(1, c.ink // 2))
    else:
        c.d.arc([mx - mw / 2, my - mw * 0.45, mx + mw / 2, my + mw * 0.15], 20, 160, fill=INK, width=max(1, c.ink // 2))
    if a.blush == "no":
        return c.im
    layer = Image.new("RGBA", c.im.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for s in (-1, 1):
        bx, by = c.p(s * 0.56, 0.62)
        d.ellipse([bx - c.fw * 0.14, by - c.fw * 0.05, bx + c.fw * 0.14, by + c.fw * 0.05], fill=(255, 105, 125, 110))
    layer = layer.filter(ImageFilter.GaussianBlur(c.im.width * 0.012))
    return Image.alpha_composite(c.im.convert("RGBA"), layer).convert("RGB")


def draw_face(seed: int, index: int, size: int = 64, supersample: int = 4) -> tuple[np.ndarray, FaceAttributes]:
    """Face ``index`` of ``seed``: (size, size, 3) uint8 RGB and its attributes."""
    rng = np.random.default_rng([seed, index])
    a = _sample_attributes(rng)
    hair, eye = _jitter(rng, HAIR[a.hair], 16), _jitter(rng, EYES[a.eyes], 12)
    skin = _jitter(rng, (252, 226, 208), 5)
    bg = tuple(int(v) for v in rng.integers(140, 256, 3))
    cloth = tuple(int(v) for v in rng.integers(30, 230, 3))
    S = size * supersample
    im = Image.new("RGB", (S, S), bg)
    scale = rng.uniform(0.92, 1.04) * S
    fw, fh = 0.5 * scale, 0.42 * scale
    cx = S / 2 + rng.normal(0, 0.025) * S
    top = S * 0.37 + rng.normal(0, 0.02) * S - fh * 0.1
    c = _Canvas(im, cx, top, fw, fh, ink=max(1, round(scale * 0.011)))
    _back_hair(c, a, hair)
    _face_and_neck(c, skin, cloth)
    _front_hair(c, a, hair, rng)
    _eyes(c, eye, hair, rng)
    im = _mouth_and_blush(c, a, skin)
    return np.asarray(im.resize((size, size), Image.LANCZOS)), a


def draw_faces(seed: int, n: int, size: int = 64, supersample: int = 4) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``n`` faces (n, size, size, 3) uint8 and one attribute dict per face."""
    images, attrs = [], []
    for i in tqdm(range(n), desc="drawing faces", unit="face", leave=False):
        x, a = draw_face(seed, i, size, supersample)
        images.append(x)
        attrs.append(asdict(a))
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8), attrs
