"""The SCIM 2.0 resources intake serves (RFC 7643), described with ``scim2_models``."""

from __future__ import annotations

from typing import Annotated, cast

from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Extension,
    Filter,
    Group,
    Mutability,
    Pagination,
    Patch,
    Required,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class HuddleUnit(Extension):
    """Which hospital and unit a SCIM Group stands for (Huddle's extension of Group)."""

    __schema__ = URN("urn:huddle:params:scim:schemas:extension:unit:2.0:Group")

    hospital_id: Annotated[str | None, Mutability.immutable] = None
    """The hospital id (a slug); defaults to the hospital of the provisioning token."""

    unit_id: Annotated[str | None, Mutability.immutable, Required.true] = None
    """The unit id (a slug), the value staff carry as their enterprise ``department``."""


StaffUser = User[EnterpriseUser]
"""A member of staff as SCIM carries them: the core User with the enterprise extension."""
# Group is not generic for mypy; the library parameterises it at runtime all the same.
UNIT_GROUP = cast("type[Group]", Group.__class_getitem__(Annotated[HuddleUnit, Required.true]))


def _resource_type(
    model: type[User[EnterpriseUser]] | type[Group], description: str
) -> ResourceType:
    resource_type = ResourceType.from_resource(model)
    resource_type.description = description
    return resource_type


SERVICE_PROVIDER_CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_PAGE_SIZE),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="OAuth Bearer Token",
            description="A JWT from the network's issuer with the network_admin role",
            primary=True,
        )
    ],
    pagination=Pagination(
        cursor=False,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=DEFAULT_PAGE_SIZE,
        max_page_size=MAX_PAGE_SIZE,
    ),
)

# Microsoft Entra sends PATCH removals with a value and adds to entries that do not exist yet.
POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, Group, HuddleUnit],
    resource_types=[
        _resource_type(StaffUser, "Staff of the network (the workforce directory)"),
        _resource_type(UNIT_GROUP, "Units of the network's hospitals; members are their staff"),
    ],
    config=SERVICE_PROVIDER_CONFIG,
    policy=POLICY,
)
