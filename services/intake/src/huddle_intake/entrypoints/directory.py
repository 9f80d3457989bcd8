"""HTTP: the workforce directory's CSV import, for small sites without SCIM provisioning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from huddle_runtime.auth import Forbidden, Principal, Role, require_roles
from huddle_runtime.problems import ContentTooLarge, Problem, UnsupportedMediaType
from huddle_runtime.service import Runtime
from pydantic import BaseModel

from huddle_intake.application.directory_import import (
    COLUMNS,
    ImportOutOfScope,
    ImportRefused,
    import_directory,
)
from huddle_intake.application.workforce_directory import DirectoryKeys

router = APIRouter(prefix="/v1/directory", tags=["workforce directory"])

# A small site's whole workforce is well under this; a bigger one provisions through SCIM.
MAX_IMPORT_BYTES = 10 * 1024 * 1024


class DirectoryImported(BaseModel):
    created: int
    """People new to the directory (or back after being deprovisioned)."""
    updated: int


class RefusedImport(Problem):
    status = 422
    title = "Directory import refused"
    type_suffix = "directory-import"


Importer = Annotated[Principal, Depends(require_roles(Role.NETWORK_ADMIN, Role.COORDINATOR))]


@router.post(
    "/import",
    response_model=DirectoryImported,
    summary="Create or update staff from a CSV file (all rows or none)",
    description="`text/csv` (UTF-8) with a header naming some of the columns "
    + ", ".join(f"`{c}`" for c in COLUMNS)
    + " (the first four are required). A bad row refuses the whole file with a problem naming "
    "its line and column.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_directory_csv(request: Request, principal: Importer) -> DirectoryImported:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise UnsupportedMediaType("send the directory as text/csv")
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise ContentTooLarge(f"a directory file is at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RefusedImport("the file is not UTF-8 text", line=None, column=None) from exc
    runtime: Runtime = request.app.state.runtime
    keys: DirectoryKeys = request.app.state.directory_keys
    try:
        counts = await import_directory(runtime=runtime, keys=keys, principal=principal, text=text)
    except ImportOutOfScope as exc:
        raise Forbidden(str(exc), line=exc.line, column=exc.column) from exc
    except ImportRefused as exc:
        raise RefusedImport(str(exc), line=exc.line, column=exc.column) from exc
    return DirectoryImported(created=counts.created, updated=counts.updated)
