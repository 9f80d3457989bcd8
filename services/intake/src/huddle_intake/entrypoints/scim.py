"""SCIM 2.0 at ``/scim/v2`` (RFC 7644): the identity provider keeps the workforce directory current.

Bodies are ``application/scim+json``; every error, authentication included, is a SCIM Error
(RFC 7644 §3.12), the SCIM edge's problem format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from huddle_runtime.auth import Principal, Role, require_roles
from huddle_runtime.problems import Problem
from huddle_runtime.service import Runtime
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    InvalidSyntaxException,
    ListResponse,
    Message,
    Meta,
    NotFoundException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from huddle_intake.adapters.scim_resources import PROVIDER, UNIT_GROUP, StaffUser
from huddle_intake.application.scim_provisioning import ScimProvisioning, page_of
from huddle_intake.application.workforce_directory import DirectoryKeys

SCIM_JSON = "application/scim+json"
PREFIX = "/scim/v2"

log = structlog.get_logger(__name__)

_Described = TypeVar("_Described", ResourceType, Schema)


class ScimResponse(Response):
    media_type = SCIM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def scim_error(status: int, detail: str, scim_type: str | None = None, **headers: str) -> Response:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return ScimResponse(body, status_code=status, headers=headers or None)


class ScimRoute(APIRoute):
    """Turns every failure, from the token check to the database, into a SCIM Error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except SCIMException as exc:
                error = exc.to_error()
                return scim_error(error.status or 400, exc.detail, error.scim_type)
            except Problem as exc:
                return scim_error(exc.status, exc.detail, **exc.headers)
            except RequestValidationError as exc:
                # Query parameters only (bodies are read below); values are never echoed.
                detail = "; ".join(
                    f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return scim_error(400, detail or "invalid request", "invalidValue")
            except StarletteHTTPException as exc:
                return scim_error(exc.status_code, str(exc.detail))
            except Exception:
                log.exception("unhandled error at the SCIM edge", path=request.url.path)
                return scim_error(500, "the service failed to handle the request; it is logged")

        return scim_handler


router = APIRouter(prefix=PREFIX, tags=["SCIM 2.0 provisioning"], route_class=ScimRoute)

IdentityProvider = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN))]
StartIndex = Annotated[int | None, Query(alias="startIndex", description="1-based")]
Count = Annotated[int | None, Query(description="page size (at most 500)")]
Filter = Annotated[
    str | None,
    Query(description="eq on userName or externalId (Users), displayName or externalId (Groups)"),
]
Attributes = Annotated[str | None, Query(description="attributes to return (comma-separated)")]
ExcludedAttributes = Annotated[
    str | None,
    Query(alias="excludedAttributes", description="attributes to leave out (comma-separated)"),
]

_BODY = {
    "requestBody": {
        "required": True,
        "content": {SCIM_JSON: {"schema": {"type": "object"}}},
    }
}


def _provisioning(request: Request, principal: Principal) -> ScimProvisioning:
    runtime: Runtime = request.app.state.runtime
    keys: DirectoryKeys = request.app.state.directory_keys
    return ScimProvisioning(
        runtime=runtime, keys=keys, principal=principal, base_url=_base_url(request)
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntaxException(detail="the body is not JSON") from exc


def _response_parameters(
    model: type[Resource[Any]], attributes: str | None, excluded: str | None
) -> ResponseParameters[Any] | None:
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters[model].model_validate(  # type: ignore[valid-type]
            {"attributes": attributes, "excludedAttributes": excluded}
        )
    except ValidationError as exc:
        raise InvalidSyntaxException(
            detail="attributes and excludedAttributes name attributes, and not both"
        ) from exc


def _render(
    resource: Resource[Any] | Message,
    context: Context,
    *,
    status: int = 200,
    parameters: ResponseParameters[Any] | None = None,
) -> Response:
    body = resource.model_dump(scim_ctx=context, response_parameters=parameters)
    headers = {}
    meta = getattr(resource, "meta", None)
    if isinstance(meta, Meta) and meta.location:
        # RFC 7644 §3.1: Location for what was just created, Content-Location otherwise.
        headers["Location" if status == 201 else "Content-Location"] = meta.location
    return ScimResponse(body, status_code=status, headers=headers)


def _leaves_out_members(parameters: ResponseParameters[Any] | None) -> bool:
    """Entra asks for groups without their members: do not read them at all then."""
    if parameters is None:
        return False
    if parameters.excluded_attributes:
        return any(str(p).casefold() == "members" for p in parameters.excluded_attributes)
    return not any(str(p).casefold().startswith("members") for p in parameters.attributes or [])


# --- Users -------------------------------------------------------------------------------------


@router.post("/Users", status_code=201, summary="Provision a member of staff", openapi_extra=_BODY)
async def create_user(request: Request, principal: IdentityProvider) -> Response:
    user = await _provisioning(request, principal).create_user(await _body(request))
    return _render(user, Context.RESOURCE_CREATION_RESPONSE, status=201)


@router.get("/Users", summary="Staff, filtered with eq on userName or externalId, by pages")
async def list_users(
    request: Request,
    principal: IdentityProvider,
    filter: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded_attributes: ExcludedAttributes = None,
) -> Response:
    parameters = _response_parameters(StaffUser, attributes, excluded_attributes)
    found = await _provisioning(request, principal).list_users(
        filter_=filter, page=page_of(start_index, count)
    )
    return _render(found, Context.SEARCH_RESPONSE, parameters=parameters)


@router.get("/Users/{user_id}", summary="One member of staff")
async def read_user(
    user_id: str,
    request: Request,
    principal: IdentityProvider,
    attributes: Attributes = None,
    excluded_attributes: ExcludedAttributes = None,
) -> Response:
    parameters = _response_parameters(StaffUser, attributes, excluded_attributes)
    user = await _provisioning(request, principal).get_user(user_id)
    return _render(user, Context.RESOURCE_QUERY_RESPONSE, parameters=parameters)


@router.put("/Users/{user_id}", summary="Replace a member of staff", openapi_extra=_BODY)
async def replace_user(user_id: str, request: Request, principal: IdentityProvider) -> Response:
    user = await _provisioning(request, principal).replace_user(user_id, await _body(request))
    return _render(user, Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Users/{user_id}", summary="Change a member of staff", openapi_extra=_BODY)
async def patch_user(user_id: str, request: Request, principal: IdentityProvider) -> Response:
    user = await _provisioning(request, principal).patch_user(user_id, await _body(request))
    return _render(user, Context.RESOURCE_PATCH_RESPONSE)


@router.delete(
    "/Users/{user_id}",
    status_code=204,
    summary="Deprovision a member of staff (deactivated, history kept)",
)
async def delete_user(user_id: str, request: Request, principal: IdentityProvider) -> Response:
    await _provisioning(request, principal).deprovision_user(user_id)
    return Response(status_code=204)


# --- Groups (units) ----------------------------------------------------------------------------


@router.post("/Groups", status_code=201, summary="Provision a unit", openapi_extra=_BODY)
async def create_group(request: Request, principal: IdentityProvider) -> Response:
    group = await _provisioning(request, principal).create_group(await _body(request))
    return _render(group, Context.RESOURCE_CREATION_RESPONSE, status=201)


@router.get("/Groups", summary="Units, filtered with eq on displayName or externalId")
async def list_groups(
    request: Request,
    principal: IdentityProvider,
    filter: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    attributes: Attributes = None,
    excluded_attributes: ExcludedAttributes = None,
) -> Response:
    parameters = _response_parameters(UNIT_GROUP, attributes, excluded_attributes)
    found = await _provisioning(request, principal).list_groups(
        filter_=filter,
        page=page_of(start_index, count),
        with_members=not _leaves_out_members(parameters),
    )
    return _render(found, Context.SEARCH_RESPONSE, parameters=parameters)


@router.get("/Groups/{group_id}", summary="One unit and its staff")
async def read_group(
    group_id: str,
    request: Request,
    principal: IdentityProvider,
    attributes: Attributes = None,
    excluded_attributes: ExcludedAttributes = None,
) -> Response:
    parameters = _response_parameters(UNIT_GROUP, attributes, excluded_attributes)
    group = await _provisioning(request, principal).get_group(
        group_id, with_members=not _leaves_out_members(parameters)
    )
    return _render(group, Context.RESOURCE_QUERY_RESPONSE, parameters=parameters)


@router.put("/Groups/{group_id}", summary="Replace a unit", openapi_extra=_BODY)
async def replace_group(group_id: str, request: Request, principal: IdentityProvider) -> Response:
    group = await _provisioning(request, principal).replace_group(group_id, await _body(request))
    return _render(group, Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Groups/{group_id}", summary="Rename a unit or add staff to it", openapi_extra=_BODY)
async def patch_group(group_id: str, request: Request, principal: IdentityProvider) -> Response:
    group = await _provisioning(request, principal).patch_group(group_id, await _body(request))
    return _render(group, Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Groups/{group_id}", status_code=204, summary="Remove a unit")
async def delete_group(group_id: str, request: Request, principal: IdentityProvider) -> Response:
    await _provisioning(request, principal).delete_group(group_id)
    return Response(status_code=204)


# --- Discovery (RFC 7644 §4) -------------------------------------------------------------------


@router.get("/ServiceProviderConfig", summary="What this SCIM service supports")
async def service_provider_config(request: Request, principal: IdentityProvider) -> Response:
    config = PROVIDER.config
    assert config is not None
    config = config.model_copy(
        update={
            "meta": Meta(
                resource_type="ServiceProviderConfig",
                location=_base_url(request) + "/ServiceProviderConfig",
            )
        }
    )
    return _render(config, Context.RESOURCE_QUERY_RESPONSE)


def _described(resource: _Described, request: Request, endpoint: str) -> _Described:
    kind = "ResourceType" if isinstance(resource, ResourceType) else "Schema"
    key = resource.id if isinstance(resource, Schema) else resource.name
    return resource.model_copy(
        update={"meta": Meta(resource_type=kind, location=f"{_base_url(request)}/{endpoint}/{key}")}
    )


@router.get("/ResourceTypes", summary="The resource types served: User and Group")
async def resource_types(request: Request, principal: IdentityProvider) -> Response:
    types = [_described(t, request, "ResourceTypes") for t in PROVIDER.resource_types]
    listed = ListResponse[ResourceType](
        total_results=len(types), start_index=1, items_per_page=len(types), resources=types
    )
    return _render(listed, Context.RESOURCE_QUERY_RESPONSE)


@router.get("/ResourceTypes/{name}", summary="One resource type")
async def resource_type(name: str, request: Request, principal: IdentityProvider) -> Response:
    for described in PROVIDER.resource_types:
        if str(described.name).casefold() == name.casefold():
            return _render(
                _described(described, request, "ResourceTypes"), Context.RESOURCE_QUERY_RESPONSE
            )
    raise NotFoundException(detail=f"no resource type {name}")


@router.get("/Schemas", summary="The schemas of User, its enterprise extension, Group and units")
async def schemas(request: Request, principal: IdentityProvider) -> Response:
    described = [_described(s, request, "Schemas") for s in PROVIDER.schemas]
    listed = ListResponse[Schema](
        total_results=len(described),
        start_index=1,
        items_per_page=len(described),
        resources=described,
    )
    return _render(listed, Context.RESOURCE_QUERY_RESPONSE)


@router.get("/Schemas/{schema_id}", summary="One schema")
async def schema(schema_id: str, request: Request, principal: IdentityProvider) -> Response:
    for described in PROVIDER.schemas:
        if str(described.id).casefold() == schema_id.casefold():
            return _render(
                _described(described, request, "Schemas"), Context.RESOURCE_QUERY_RESPONSE
            )
    raise NotFoundException(detail=f"no schema {schema_id}")


@router.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def unknown_endpoint(path: str) -> Response:
    raise NotFoundException(detail=f"no SCIM endpoint /{path}")
