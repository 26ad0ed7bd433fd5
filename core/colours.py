"""Colour contrast as WCAG 2.1 defines it (success criterion 1.4.3): the relative luminance of
an sRGB colour and the contrast ratio of two, for an organization's brand colour."""

from __future__ import annotations

#: The text colours a brand colour may carry: the design system's ink, or white.
DARK_TEXT = "#111827"
WHITE_TEXT = "#ffffff"
#: The least contrast of normal text (AA).
AA_TEXT = 4.5


def relative_luminance(colour: str) -> float:
    """The relative luminance of `#rrggbb`, from 0 (black) to 1 (white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """The contrast ratio of two `#rrggbb` colours, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_on(background: str) -> str | None:
    """The text colour that reads on `background` with the higher contrast, white or the dark
    ink; None when neither reaches 4.5:1."""
    best = max((WHITE_TEXT, DARK_TEXT), key=lambda text: contrast_ratio(background, text))
    return best if contrast_ratio(background, best) >= AA_TEXT else None


def readable_on_white(colour: str) -> str:
    """`colour`, darkened just enough to read as text on white (links, outlined buttons)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    shade = colour
    for step in range(101):
        factor = 1 - step / 100
        shade = f"#{round(red * factor):02x}{round(green * factor):02x}{round(blue * factor):02x}"
        if contrast_ratio(shade, WHITE_TEXT) >= AA_TEXT:
            return shade
    return shade
