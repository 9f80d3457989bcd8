"""Every error at the HTTP edge is RFC 9457 problem+json with a clear detail."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from huddle_runtime.problems import NotFound, install_problem_handlers
from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_of_unit: str


def app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"ok": body.name_of_unit}

    @app.get("/things/{n}")
    async def read(n: int) -> dict[str, int]:
        raise NotFound(f"no thing {n}")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


async def request(method: str, url: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, url, **kwargs)  # type: ignore[arg-type]


async def test_an_unknown_field_is_refused_by_name() -> None:
    response = await request("POST", "/things", json={"name_of_unit": "icu", "extra": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Invalid request" and problem["status"] == 422
    assert "body.extra: Extra inputs are not permitted" in problem["detail"]
    assert problem["instance"] == "/things"


async def test_a_domain_problem_keeps_its_status_and_detail() -> None:
    response = await request("GET", "/things/7")
    assert response.status_code == 404
    assert response.json()["detail"] == "no thing 7"


async def test_an_unknown_route_is_a_problem_too() -> None:
    response = await request("GET", "/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_bug_is_a_500_problem_that_hides_internals() -> None:
    response = await request("GET", "/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_malformed_json_is_a_problem() -> None:
    response = await request(
        "POST", "/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
