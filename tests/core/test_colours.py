"""WCAG 2.1 contrast of brand colours: the ratio, the text colour chosen, the refusals."""

from __future__ import annotations

import pytest

from core.colours import (
    DARK_TEXT,
    WHITE_TEXT,
    contrast_ratio,
    readable_on_white,
    relative_luminance,
    text_on,
)
from core.errors import Invalid
from core.validation import clean_colour


def test_the_ratio_follows_wcag() -> None:
    assert relative_luminance("#000000") == 0
    assert relative_luminance("#ffffff") == pytest.approx(1)
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21)
    assert contrast_ratio("#1d4ed8", "#1d4ed8") == pytest.approx(1)
    # WebAIM's checker: #767676 on white is 4.54:1, #777777 4.48:1
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(
    ("brand", "text"),
    [
        ("#1d4ed8", WHITE_TEXT),  # the default blue
        ("#000000", WHITE_TEXT),
        ("#facc15", DARK_TEXT),  # a light yellow: white would be 1.5:1
        ("#22c55e", DARK_TEXT),
        ("#ffffff", DARK_TEXT),
        ("#777777", None),  # neither reaches 4.5:1
        ("#8b5cf6", None),
    ],
)
def test_the_text_colour_is_the_one_that_reads(brand: str, text: str | None) -> None:
    assert text_on(brand) == text
    if text is not None:
        assert contrast_ratio(brand, text) >= 4.5


def test_links_get_a_shade_that_reads_on_white() -> None:
    assert readable_on_white("#1d4ed8") == "#1d4ed8"  # already enough
    shade = readable_on_white("#facc15")
    assert contrast_ratio(shade, WHITE_TEXT) >= 4.5
    assert readable_on_white("#ffffff") != "#ffffff"


def test_a_colour_no_text_reads_on_is_refused() -> None:
    assert clean_colour("#FACC15") == "#facc15"
    with pytest.raises(Invalid) as refused:
        clean_colour("#777777")
    assert refused.value.field == "brand_colour"
    assert "4.5 to 1" in refused.value.message
