#!/usr/bin/env python3
"""Regenerates the PNG artwork of the example pass templates.

Only needed when the artwork changes; the generated PNGs are kept in the repo.

    pip install pillow
    python3 pass-templates/make-images.py

Draws flat vector-like shapes at 4x resolution and downsamples them, so the
edges are anti-aliased while the files stay small. Output sizes follow Apple's
store-card guidance: icon 29x29, logo 160x50, strip 375x123 (plus @2x/@3x);
Google Wallet's own images are google_logo.png (660x660) and google_hero.png
(1032x336). Name kinds to redraw only those:

    python3 pass-templates/make-images.py google_logo google_hero
"""

import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SUPERSAMPLE = 4
SCALES = {"": 1, "@2x": 2, "@3x": 3}
ICON = (29, 29)
LOGO = (160, 50)
STRIP = (375, 123)
TRANSPARENT = (0, 0, 0, 0)


def rgba(hex_color, alpha=255):
    hex_color = hex_color.lstrip("#")
    return tuple(int(hex_color[i:i + 2], 16) for i in (0, 2, 4)) + (alpha,)


# Palettes match the colors in each template.json.
LOYALTY = {
    "background": rgba("#3b2418"),
    "foreground": rgba("#fff8f0"),
    "label": rgba("#f4c28a"),
    "strip": rgba("#6b4029"),
    "strip_light": rgba("#7d4c31"),
    "strip_dark": rgba("#552f1d"),
}
GIFT = {
    "background": rgba("#0f3d2e"),
    "foreground": rgba("#f3faf5"),
    "label": rgba("#e6c36a"),
    "strip": rgba("#17573f"),
    "strip_light": rgba("#1f6a4e"),
    "strip_dark": rgba("#10432f"),
    "ribbon": rgba("#c9a045"),
    "ribbon_dark": rgba("#a9832f"),
}


class Pen:
    """Draws in a local unit coordinate system mapped onto the canvas."""

    def __init__(self, draw, x0, y0, unit):
        self.d = draw
        self.x0, self.y0, self.unit = x0, y0, unit

    def pt(self, x, y):
        return (self.x0 + x * self.unit, self.y0 + y * self.unit)

    def box(self, x1, y1, x2, y2):
        return [*self.pt(x1, y1), *self.pt(x2, y2)]

    def w(self, width):
        return max(1, round(width * self.unit))

    def rect(self, x1, y1, x2, y2, fill, radius=0.0, corners=None):
        if radius:
            self.d.rounded_rectangle(self.box(x1, y1, x2, y2), radius=radius * self.unit,
                                     fill=fill, corners=corners)
        else:
            self.d.rectangle(self.box(x1, y1, x2, y2), fill=fill)

    def ellipse(self, x1, y1, x2, y2, fill=None, outline=None, width=0.0):
        self.d.ellipse(self.box(x1, y1, x2, y2), fill=fill, outline=outline,
                       width=self.w(width) if outline else 0)

    def polygon(self, points, fill):
        self.d.polygon([self.pt(x, y) for x, y in points], fill=fill)

    def line(self, points, fill, width):
        self.d.line([self.pt(x, y) for x, y in points], fill=fill, width=self.w(width),
                    joint="curve")
        radius = width / 2
        for x, y in (points[0], points[-1]):  # round caps
            self.ellipse(x - radius, y - radius, x + radius, y + radius, fill=fill)


def coffee_cup(pen, main, accent, cut):
    """Cup on a saucer with steam, in a 1x1 unit box."""
    # Handle: a ring whose left half is hidden behind the cup body.
    pen.ellipse(0.56, 0.44, 0.86, 0.72, outline=main, width=0.075)
    pen.rect(0.18, 0.38, 0.70, 0.82, main, radius=0.16, corners=(False, False, True, True))
    # Rim and coffee surface.
    pen.ellipse(0.18, 0.32, 0.70, 0.44, fill=main)
    pen.ellipse(0.23, 0.345, 0.65, 0.415, fill=accent)
    # Saucer, separated from the cup by a thin cut.
    pen.rect(0.06, 0.82, 0.94, 0.85, cut)
    pen.rect(0.08, 0.85, 0.90, 0.92, main, radius=0.035)
    # Steam.
    for x in (0.30, 0.44, 0.58):
        wave = [(x + 0.035 * math.sin(t / 10 * 2 * math.pi), 0.27 - 0.017 * t) for t in range(11)]
        pen.line(wave, accent, 0.045)


def gift_box(pen, main, accent, cut):
    """Wrapped present with a bow, in a 1x1 unit box."""
    # Bow loops and tails.
    pen.ellipse(0.23, 0.12, 0.50, 0.34, outline=accent, width=0.07)
    pen.ellipse(0.50, 0.12, 0.77, 0.34, outline=accent, width=0.07)
    # Lid and box, separated by a thin cut.
    pen.rect(0.10, 0.32, 0.90, 0.48, main, radius=0.03)
    pen.rect(0.08, 0.48, 0.92, 0.52, cut)
    pen.rect(0.16, 0.52, 0.84, 0.90, main, radius=0.03)
    # Vertical ribbon and knot.
    pen.rect(0.445, 0.32, 0.555, 0.90, accent)
    pen.ellipse(0.43, 0.25, 0.57, 0.37, fill=accent)


def bean(pen, cx, cy, length, angle, fill, groove):
    """A coffee bean: rotated ellipse with an S-shaped groove."""
    ca, sa = math.cos(angle), math.sin(angle)

    def rot(u, v):
        return (cx + u * ca - v * sa, cy + u * sa + v * ca)

    a, b = length / 2, length * 0.33
    outline = [rot(a * math.cos(t), b * math.sin(t))
               for t in (2 * math.pi * i / 48 for i in range(48))]
    pen.polygon(outline, fill)
    groove_pts = [rot(u, b * 0.18 * math.sin(u / a * math.pi))
                  for u in (a * 0.8 * (i / 8 - 0.5) * 2 for i in range(9))]
    pen.line(groove_pts, groove, length * 0.07)


def render(size, scale, paint, mode):
    w, h = size[0] * scale, size[1] * scale
    big = Image.new("RGBA", (w * SUPERSAMPLE, h * SUPERSAMPLE), TRANSPARENT)
    paint(big, ImageDraw.Draw(big))
    img = big.resize((w, h), Image.LANCZOS)
    return img.convert(mode)


def icon_painter(mark, palette, accent_key):
    def paint(img, draw):
        side = img.size[0]
        draw.rectangle([0, 0, side, side], fill=palette["background"])
        inset = side * 0.12
        pen = Pen(draw, inset, inset, side - 2 * inset)
        mark(pen, palette["foreground"], palette[accent_key], palette["background"])
    return paint


def logo_painter(mark, palette, accent_key):
    def paint(img, draw):
        # Mark only, left-aligned and full height, on a transparent canvas:
        # Wallet draws logo_text next to it.
        h = img.size[1]
        pen = Pen(draw, 0, h * 0.02, h * 0.96)
        mark(pen, palette["foreground"], palette[accent_key], TRANSPARENT)
    return paint


def google_logo_painter(mark, palette, accent_key):
    def paint(img, draw):
        # Google shows the logo inside a circle: the mark stays within its middle.
        side = img.size[0]
        draw.rectangle([0, 0, side, side], fill=palette["background"])
        inset = side * 0.24
        pen = Pen(draw, inset, inset, side - 2 * inset)
        mark(pen, palette["foreground"], palette[accent_key], palette["background"])
    return paint


def loyalty_strip(img, draw):
    w, h = img.size
    p = LOYALTY
    draw.rectangle([0, 0, w, h], fill=p["strip"])
    pen = Pen(draw, 0, 0, h)  # unit = strip height, x runs to ~3.05
    # Big, subtle cup on the right; the left side stays calm for the fields.
    cup = Pen(draw, *pen.pt(2.1, 0.06), h * 0.9)
    coffee_cup(cup, p["strip_light"], p["label"], p["strip"])
    # Scattered beans.
    rng = random.Random(7)
    for x, y, size in [(1.25, 0.22, 0.16), (1.52, 0.58, 0.20), (1.78, 0.20, 0.13),
                       (1.88, 0.66, 0.15), (1.05, 0.55, 0.12), (2.95, 0.25, 0.14)]:
        bean(pen, x, y, size, rng.uniform(0, math.pi), p["strip_dark"], p["strip"])


def gift_strip(img, draw):
    w, h = img.size
    p = GIFT
    draw.rectangle([0, 0, w, h], fill=p["strip"])
    pen = Pen(draw, 0, 0, h)
    width_units = w / h
    # Confetti: small diamonds and dots on the left two thirds.
    rng = random.Random(11)
    for _ in range(18):
        x, y = rng.uniform(0.1, 1.8), rng.uniform(0.08, 0.92)
        s = rng.uniform(0.025, 0.05)
        color = p["strip_light"] if rng.random() < 0.7 else p["ribbon_dark"]
        if rng.random() < 0.5:
            pen.polygon([(x, y - s), (x + s, y), (x, y + s), (x - s, y)], color)
        else:
            pen.ellipse(x - s * 0.7, y - s * 0.7, x + s * 0.7, y + s * 0.7, fill=color)
    # Vertical ribbon with a bow near the top.
    rx = width_units - 0.75
    pen.rect(rx - 0.09, 0, rx + 0.09, 1.0, p["ribbon"])
    pen.rect(rx - 0.09, 0, rx - 0.05, 1.0, p["ribbon_dark"])
    for side in (-1, 1):
        # Tails: slanted bands with a V-notch at the end.
        x1, y1, x2, y2, half = rx, 0.36, rx + side * 0.30, 0.84, 0.05
        length = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        nx, ny = -uy * half, ux * half
        pen.polygon([(x1 + nx, y1 + ny), (x2 + nx, y2 + ny),
                     (x2 - ux * half * 1.6, y2 - uy * half * 1.6),
                     (x2 - nx, y2 - ny), (x1 - nx, y1 - ny)], p["ribbon_dark"])
        # Loops.
        cx = rx + side * 0.24
        pen.ellipse(cx - 0.24, 0.16, cx + 0.24, 0.52, outline=p["ribbon"], width=0.09)
    pen.ellipse(rx - 0.11, 0.24, rx + 0.11, 0.46, fill=p["ribbon"])
    pen.ellipse(rx - 0.06, 0.29, rx + 0.03, 0.37, fill=p["label"])


TEMPLATES = {
    "loyalty-default": {
        "icon": icon_painter(coffee_cup, LOYALTY, "label"),
        "logo": logo_painter(coffee_cup, LOYALTY, "label"),
        "strip": loyalty_strip,
        "google_logo": google_logo_painter(coffee_cup, LOYALTY, "label"),
        "google_hero": loyalty_strip,
    },
    "gift-card-default": {
        "icon": icon_painter(gift_box, GIFT, "label"),
        "logo": logo_painter(gift_box, GIFT, "label"),
        "strip": gift_strip,
        "google_logo": google_logo_painter(gift_box, GIFT, "label"),
        "google_hero": gift_strip,
    },
}
SIZES = {"icon": (ICON, "RGB"), "logo": (LOGO, "RGBA"), "strip": (STRIP, "RGB"),
         "google_logo": ((660, 660), "RGB"), "google_hero": ((1032, 336), "RGB")}
# Google's images come in one size only.
GOOGLE = {"google_logo", "google_hero"}


def main():
    only = set(sys.argv[1:])
    for folder, painters in TEMPLATES.items():
        out_dir = HERE / folder
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, paint in painters.items():
            if only and name not in only:
                continue
            size, mode = SIZES[name]
            scales = {"": 1} if name in GOOGLE else SCALES
            for suffix, scale in scales.items():
                path = out_dir / f"{name}{suffix}.png"
                render(size, scale, paint, mode).save(path, optimize=True)
                print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
