"""An audit event's details as sentences a person reads, in their language.

The audit log stores details as JSON (`{"changes": {"logo": {"from": null, "to": "uploaded"}}}`);
the console's and the back office's logs show them as "Logo: none → uploaded": field labels
translated, values formatted (dates and moments in the organization's zone, yes/no, lists, a
missing value as "none"), and never a Python repr.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from core.i18n import N_, translate
from core.l10n import format_day, format_moment
from tenants.features import FEATURES, Feature

#: The labels of the fields audit details name (msgids). A key not listed is shown as
#: its words ("retention_days" -> "Retention days").
FIELD_LABELS: dict[str, str] = {
    "active": N_("Active"),
    "added": N_("Added"),
    "amount": N_("Amount"),
    "brand_colour": N_("Brand colour"),
    "campaign": N_("Campaign"),
    "category": N_("Category"),
    "changed": N_("Changed"),
    "code": N_("Code"),
    "credit_note": N_("Credit note"),
    "currency": N_("Currency"),
    "default_locale": N_("Default language"),
    "delete_after": N_("Deleted after"),
    "domain": N_("Domain"),
    "due_on": N_("Due on"),
    "email": N_("Email"),
    "email_verified": N_("Email verified"),
    "ends_on": N_("Ends on"),
    "event": N_("Event"),
    "events": N_("Events"),
    "fields": N_("Fields"),
    "file": N_("File"),
    "group": N_("Group"),
    "kind": N_("Kind"),
    "learner_group": N_("Group"),
    "locale": N_("Language"),
    "logo": N_("Logo"),
    "method": N_("Method"),
    "name": N_("Name"),
    "new_role": N_("New role"),
    "number": N_("Number"),
    "old_role": N_("Former role"),
    "outcome": N_("Outcome"),
    "previous": N_("Previous"),
    "protocol": N_("Protocol"),
    "reason": N_("Reason"),
    "reference": N_("Reference"),
    "removed": N_("Removed"),
    "retention_days": N_("Retention (days)"),
    "role": N_("Role"),
    "rows": N_("Rows"),
    "scopes": N_("Scopes"),
    "seats": N_("Seats"),
    "slug": N_("Identifier"),
    "source": N_("Source"),
    "sso_required_for_members": N_("Single sign-on required for members"),
    "starts_on": N_("Starts on"),
    "status": N_("Status"),
    "step": N_("Step"),
    "subject": N_("Subject"),
    "total": N_("Total"),
    "type": N_("Type"),
    "url": N_("Address"),
    "version": N_("Version"),
    "via": N_("Via"),
    "was_required": N_("Was required"),
    "was_verified": N_("Was verified"),
}

#: Values that are words of the product (shown translated): roles, statuses, the logo's state.
TRANSLATED_VALUES = frozenset(
    {
        "owner",
        "admin",
        "member",
        "trial",
        "active",
        "suspended",
        "closed",
        N_("uploaded"),
    }
)

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass(frozen=True)
class DetailLine:
    """One line of an event's details: "Logo: none → uploaded" is label "Logo", before
    "none", after "uploaded"; a plain detail has no `before`."""

    label: str
    after: str
    before: str | None = None

    def text(self, locale: str) -> str:
        """The line in `locale` (French puts a no-break space before the colon)."""
        if self.before is None:
            return translate(locale, "{label}: {value}", label=self.label, value=self.after)
        return translate(
            locale,
            "{label}: {before} → {after}",
            label=self.label,
            before=self.before,
            after=self.after,
        )


def field_label(locale: str, key: str) -> str:
    """The translated label of a detail's key (a feature's own label for a feature key)."""
    if key in FIELD_LABELS:
        return translate(locale, FIELD_LABELS[key])
    if key in Feature.__members__.values():
        return translate(locale, FEATURES[Feature(key)].label)
    return key.replace("_", " ").capitalize()


def format_value(locale: str, value: Any, zone: tzinfo | None = None) -> str:
    """A detail's value for a reader: None -> "none", booleans -> yes/no, lists joined, dates
    and moments formatted (moments in `zone`, named), product words translated."""
    if value is None or value == "":
        return translate(locale, "none")
    if isinstance(value, bool):
        return translate(locale, "yes") if value else translate(locale, "no")
    if isinstance(value, datetime):
        return format_moment(value, locale, zone)
    if isinstance(value, date):
        return format_day(value, locale)
    if isinstance(value, list | tuple | set | frozenset):
        items = [format_value(locale, item, zone) for item in value]
        return ", ".join(items) if items else translate(locale, "none")
    if isinstance(value, Mapping):
        return "; ".join(
            f"{field_label(locale, str(k))}: {format_value(locale, v, zone)}"
            for k, v in value.items()
        )
    if isinstance(value, str):
        if _ISO_MOMENT.fullmatch(value[:16]) and len(value) > 10:
            # anything a person typed may look like a moment: one out of range stays text
            try:
                return format_moment(datetime.fromisoformat(value), locale, zone)
            except (ValueError, OverflowError):
                return value
        if _ISO_DAY.fullmatch(value):
            try:
                return format_day(date.fromisoformat(value), locale)
            except (ValueError, OverflowError):
                return value
        if value in TRANSLATED_VALUES:
            return translate(locale, value)
    return str(value)


def _is_change(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"from", "to"}


def describe_details(
    locale: str,
    details: Mapping[str, Any] | None,
    zone: tzinfo | None = None,
    *,
    skip: Collection[str] = (),
) -> list[DetailLine]:
    """An audit event's details as lines: each change "Label: before → after", each other
    detail "Label: value"; keys in `skip` (shown elsewhere, such as a staff reason) left out."""
    lines: list[DetailLine] = []
    details = details or {}
    if "from" in details and "to" in details:
        # a role change records its two ends at the top level
        lines.append(
            DetailLine(
                field_label(locale, "role"),
                format_value(locale, details["to"], zone),
                format_value(locale, details["from"], zone),
            )
        )
    for key, value in details.items():
        if key in skip or key in ("from", "to"):
            continue
        if key == "changes" and isinstance(value, Mapping):
            for field, change in value.items():
                lines.extend(_change_lines(locale, str(field), change, zone))
        elif _is_change(value):
            lines.extend(_change_lines(locale, key, value, zone))
        else:
            lines.append(DetailLine(field_label(locale, key), format_value(locale, value, zone)))
    return lines


def _change_lines(locale: str, field: str, change: Any, zone: tzinfo | None) -> list[DetailLine]:
    label = field_label(locale, field)
    if _is_change(change):
        return [
            DetailLine(
                label,
                format_value(locale, change["to"], zone),
                format_value(locale, change["from"], zone),
            )
        ]
    return [DetailLine(label, format_value(locale, change, zone))]
