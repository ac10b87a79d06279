"""The API root answers, through the in-process app."""

import httpx


async def test_api_root_answers_with_version_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.json() == {}
