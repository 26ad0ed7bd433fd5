"""What Jalon's SCIM service says of itself (RFC 7643 §5-7): its configuration, its two
resource types, and their schemas, trimmed to the attributes Jalon really keeps (a directory
or a checker then knows exactly what round-trips). Pure data."""

from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

#: Listings answer this many resources unless asked (`count`), and never more than the max.
DEFAULT_COUNT = 100
MAX_COUNT = 1000


def _attribute(
    name: str,
    *,
    kind: str = "string",
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    description: str = "",
    sub: list[dict[str, Any]] | None = None,
    canonical: list[str] | None = None,
    reference_types: list[str] | None = None,
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attribute["subAttributes"] = sub
    if canonical is not None:
        attribute["canonicalValues"] = canonical
    if reference_types is not None:
        attribute["referenceTypes"] = reference_types
    return attribute


def _meta(resource_type: str, location: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "location": location}


USER_ATTRIBUTES = [
    _attribute(
        "userName",
        required=True,
        uniqueness="server",
        description="The person's email address, in a domain the organization verified.",
    ),
    _attribute(
        "name",
        kind="complex",
        sub=[_attribute("givenName"), _attribute("familyName")],
    ),
    _attribute("displayName"),
    _attribute(
        "emails",
        kind="complex",
        multi=True,
        sub=[
            _attribute("value"),
            _attribute("type", canonical=["work", "home", "other"]),
            _attribute("primary", kind="boolean"),
        ],
    ),
    _attribute(
        "active",
        kind="boolean",
        description="False suspends the person's membership; their history stays.",
    ),
    _attribute(
        "groups",
        kind="complex",
        multi=True,
        mutability="readOnly",
        sub=[
            _attribute("value", mutability="readOnly"),
            _attribute("$ref", kind="reference", mutability="readOnly", reference_types=["Group"]),
            _attribute("display", mutability="readOnly"),
        ],
    ),
]

GROUP_ATTRIBUTES = [
    _attribute("displayName", required=True, uniqueness="server"),
    _attribute(
        "members",
        kind="complex",
        multi=True,
        sub=[
            _attribute("value", mutability="immutable"),
            _attribute("$ref", kind="reference", mutability="immutable", reference_types=["User"]),
        ],
    ),
]


def schemas(base_url: str) -> list[dict[str, Any]]:
    """The User and Group schemas, as `/Schemas` lists them."""
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "A person of the organization (a member of its console).",
            "attributes": USER_ATTRIBUTES,
            "meta": _meta("Schema", f"{base_url}/Schemas/{USER_SCHEMA}"),
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A directory group: it may give its members a role.",
            "attributes": GROUP_ATTRIBUTES,
            "meta": _meta("Schema", f"{base_url}/Schemas/{GROUP_SCHEMA}"),
        },
    ]


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """The two resource types, as `/ResourceTypes` lists them."""
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People of the organization",
            "schema": USER_SCHEMA,
            "schemaExtensions": [],
            "meta": _meta("ResourceType", f"{base_url}/ResourceTypes/User"),
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Directory groups",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": _meta("ResourceType", f"{base_url}/ResourceTypes/Group"),
        },
    ]


def service_provider_config(base_url: str, documentation_uri: str = "") -> dict[str, Any]:
    """What the service supports (`/ServiceProviderConfig`)."""
    config: dict[str, Any] = {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token of the organization, made in its console.",
                "primary": True,
            }
        ],
        "meta": _meta("ServiceProviderConfig", f"{base_url}/ServiceProviderConfig"),
    }
    if documentation_uri:
        config["documentationUri"] = documentation_uri
    return config


def list_response(
    resources: list[dict[str, Any]], total: int, start_index: int = 1
) -> dict[str, Any]:
    """A `ListResponse` of `resources` (one page of `total`)."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def error_document(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    """A SCIM error body (RFC 7644 §3.12)."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body
