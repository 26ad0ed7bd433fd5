"""Checks of user input shared by every package. Each raises `Invalid` naming the field."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from zoneinfo import ZoneInfo

from core.colours import text_on
from core.errors import Invalid, raise_all
from core.i18n import LOCALES

_EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
_COLOUR = re.compile(r"^#[0-9a-f]{6}$")
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 200


def clean_text(value: str | None, field: str, *, max_length: int, required: bool = True) -> str:
    """Trimmed, NFC-normalized text without control characters, within `max_length`."""
    text = unicodedata.normalize("NFC", (value or "").strip())
    if any(unicodedata.category(ch) in _CONTROL for ch in text):
        raise Invalid("This field contains characters that are not allowed.", field=field)
    if required and not text:
        raise Invalid("This field is required.", field=field)
    if len(text) > max_length:
        raise Invalid(
            "This field is too long ({max} characters at most).", field=field, max=max_length
        )
    return text


#: In multi-line text: line breaks, tabs, and the joiners that compose emoji and some scripts
#: (the other format characters, bidi overrides among them, stay refused).
_MULTILINE_ALLOWED = frozenset("\n\t\u200c\u200d")


def clean_multiline(
    value: str | None, field: str, *, max_length: int, required: bool = False
) -> str:
    """Like `clean_text` for a text box: paragraphs kept (CRLF becomes LF), tabs and emoji
    joiners allowed, other control and format characters refused."""
    text = unicodedata.normalize("NFC", (value or "").replace("\r\n", "\n").strip())
    if any(unicodedata.category(ch) in _CONTROL and ch not in _MULTILINE_ALLOWED for ch in text):
        raise Invalid("This field contains characters that are not allowed.", field=field)
    if required and not text:
        raise Invalid("This field is required.", field=field)
    if len(text) > max_length:
        raise Invalid(
            "This field is too long ({max} characters at most).", field=field, max=max_length
        )
    return text


def clean_email(value: str | None, field: str = "email") -> str:
    """A syntactically valid email address, trimmed; its case is kept (lookups ignore it)."""
    email = (value or "").strip()
    if not email:
        raise Invalid("This field is required.", field=field)
    # The pattern admits any other character in the local part; control and format
    # characters (NUL, bidi overrides) are refused here rather than by the database.
    if (
        len(email) > 254
        or not _EMAIL.match(email)
        or any(unicodedata.category(ch) in _CONTROL for ch in email)
    ):
        raise Invalid("Enter a valid email address.", field=field)
    return email


def clean_timezone(value: str | None, field: str = "timezone") -> str:
    """An IANA time zone name this machine knows (Europe/Paris). A region alone (Europe)
    names a folder of the zone database, not a zone, and is refused like a made-up name."""
    zone = clean_text(value, field, max_length=64)
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError, OSError):  # unknown name, bad path, a folder (IsADirectory)
        raise Invalid("Choose a valid time zone (e.g. Europe/Paris).", field=field) from None
    return zone


def clean_slug(value: str | None, field: str = "slug") -> str:
    """A lowercase slug of letters, digits and inner hyphens, 1 to 48 characters."""
    slug = (value or "").strip().lower()
    if not _SLUG.match(slug):
        raise Invalid(
            "Use 1 to 48 lowercase letters, digits or hyphens, not starting or ending "
            "with a hyphen.",
            field=field,
        )
    return slug


def slugify(text: str) -> str:
    """A slug suggestion from a name ("Ville de Saint-Étienne" → "ville-de-saint-etienne")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:48].strip("-") or "organization"


def clean_new_password(
    password: str | None,
    confirmation: str | None,
    field: str = "password",
    confirmation_field: str = "password_confirm",
) -> str:
    """A new password typed twice: `Invalid` for a password too short or too long, for two
    that differ, and both at once (`InvalidFields`) when both are wrong."""
    errors: list[Invalid] = []
    try:
        clean_password(password, field)
    except Invalid as error:
        errors.append(error)
    if (password or "") != (confirmation or ""):
        errors.append(Invalid("The two passwords differ.", field=confirmation_field))
    raise_all(errors)
    return password or ""


def clean_password(value: str | None, field: str = "password") -> str:
    """A password of a sensible length (length matters more than character classes)."""
    password = value or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise Invalid(
            "Choose a password of at least {min} characters.",
            field=field,
            min=PASSWORD_MIN_LENGTH,
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise Invalid(
            "This field is too long ({max} characters at most).",
            field=field,
            max=PASSWORD_MAX_LENGTH,
        )
    return password


def clean_locale(value: str | None, field: str = "locale") -> str:
    locale = (value or "").strip().lower()
    if locale not in LOCALES:
        raise Invalid("Choose one of the offered languages.", field=field)
    return locale


def clean_choice(value: str | None, choices: tuple[str, ...] | frozenset[str], field: str) -> str:
    choice = (value or "").strip()
    if choice not in choices:
        raise Invalid("Choose one of the offered options.", field=field)
    return choice


def clean_colour(
    value: str | None, field: str = "brand_colour", *, readable: bool = True
) -> str | None:
    """A brand colour as `#rrggbb` (None when empty); with `readable`, one that dark or white
    text reads on (`check_readable`)."""
    colour = (value or "").strip().lower()
    if not colour:
        return None
    if not _COLOUR.match(colour):
        raise Invalid("Enter a colour as #rrggbb.", field=field)
    if readable:
        check_readable(colour, field)
    return colour


def check_readable(colour: str, field: str = "brand_colour") -> None:
    """`Invalid` for a colour that neither dark nor white text reads on (4.5 to 1)."""
    if text_on(colour) is None:
        # Buttons are filled with the brand colour: their text, dark or white, must read.
        raise Invalid(
            "Text on this colour would be hard to read: neither dark nor white text reaches "
            "the contrast of 4.5 to 1 that accessibility requires. Choose a lighter or a "
            "darker shade.",
            field=field,
        )


#: The years a date typed by a person may fall in: enough for any real use, and far from the
#: calendar's edges, where adding a day or a time zone would overflow.
FIRST_YEAR, LAST_YEAR = 2000, 2100
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def clean_day(value: str | None, field: str) -> date | None:
    """A day typed as YYYY-MM-DD (None when empty); `Invalid` for any other form or a year
    outside FIRST_YEAR–LAST_YEAR."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise Invalid("Enter a date as YYYY-MM-DD.", field=field) from None
    # The message is a translated text: change it with FIRST_YEAR and LAST_YEAR.
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise Invalid("Enter a date between the years 2000 and 2100.", field=field)
    return day
