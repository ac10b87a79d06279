"""Content discovery: tag lists, catalog and referrers, with pagination and filters."""

from __future__ import annotations

import httpx

from tests.oci import OCI_INDEX, OCI_MANIFEST, digest_of, push_artifact, push_image


async def test_tags_sorted_and_paginated_with_link(client: httpx.AsyncClient) -> None:
    _, raw = await push_image(client, "paged")
    tags = ["v10", "v2", "A", "latest", "v1", "_x", "b-1"]
    for tag in tags:
        response = await client.put(f"/v2/paged/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201
    everything = await client.get("/v2/paged/tags/list")
    assert everything.json() == {"name": "paged", "tags": sorted(tags)}
    assert "link" not in everything.headers
    collected: list[str] = []
    url = "/v2/paged/tags/list?n=3"
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        collected += page.json()["tags"]
        assert len(page.json()["tags"]) <= 3
        link = page.headers.get("link")
        url = link[1:link.index(">")] if link else ""
        if link:
            assert link.endswith('rel="next"') and link.startswith("</v2/paged/tags/list?")
    assert collected == sorted(tags)
    after = await client.get("/v2/paged/tags/list", params={"last": "latest", "n": "2"})
    assert after.json()["tags"] == ["v1", "v10"]
    assert (await client.get("/v2/paged/tags/list", params={"n": "0"})).json()["tags"] == []


async def test_tags_of_unknown_repository_and_bad_n(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/ghost/tags/list")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    await push_image(client, "real", "v1")
    for bad in ("-1", "abc", "1.5"):
        response = await client.get("/v2/real/tags/list", params={"n": bad})
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


async def test_catalog_lists_repositories_in_order_with_pages(client: httpx.AsyncClient) -> None:
    names = ["b", "a/b", "a-b", "a0", "a.b", "a/b/c", "z9"]
    for name in names:
        await push_image(client, name, "v1", layers=0)
    everything = await client.get("/v2/_catalog")
    assert everything.json() == {"repositories": sorted(names)}
    first = await client.get("/v2/_catalog", params={"n": "4"})
    assert first.json()["repositories"] == sorted(names)[:4]
    link = first.headers["link"]
    second = await client.get(link[1:link.index(">")])
    assert second.json()["repositories"] == sorted(names)[4:]
    assert "link" not in second.headers


async def test_referrers_list_filter_and_subject_header(client: httpx.AsyncClient) -> None:
    subject_digest, subject_raw = await push_image(client, "signed", "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_raw)}
    signature = await push_artifact(client, "signed", subject, "application/vnd.example.signature",
                                    {"org.example.signer": "ci"})
    sbom = await push_artifact(client, "signed", subject, "application/spdx+json")
    response = await client.get(f"/v2/signed/referrers/{subject_digest}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert set(by_digest) == {signature, sbom}
    assert by_digest[signature]["artifactType"] == "application/vnd.example.signature"
    assert by_digest[signature]["annotations"] == {"org.example.signer": "ci"}
    assert by_digest[signature]["mediaType"] == OCI_MANIFEST
    filtered = await client.get(f"/v2/signed/referrers/{subject_digest}",
                                params={"artifactType": "application/spdx+json"})
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom]
    await client.delete(f"/v2/signed/manifests/{sbom}")
    remaining = (await client.get(f"/v2/signed/referrers/{subject_digest}")).json()["manifests"]
    assert [m["digest"] for m in remaining] == [signature]


async def test_referrers_of_unknown_subject_is_empty_and_bad_digest_400(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v2/none/referrers/{digest_of(b'x')}")
    assert response.status_code == 200
    assert response.json()["manifests"] == []
    bad = await client.get("/v2/none/referrers/sha256:nothex")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "DIGEST_INVALID"


async def test_referrer_pushed_before_its_subject(client: httpx.AsyncClient) -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"future"), "size": 6}
    artifact = await push_artifact(client, "early", subject, "application/vnd.example.note")
    response = await client.get(f"/v2/early/referrers/{subject['digest']}")
    assert [m["digest"] for m in response.json()["manifests"]] == [artifact]


async def test_referrers_paginate_with_link(client: httpx.AsyncClient) -> None:
    subject_digest, subject_raw = await push_image(client, "many", "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_raw)}
    pushed = {await push_artifact(client, "many", subject, "application/vnd.example.note") for _ in range(5)}
    seen: list[str] = []
    url = f"/v2/many/referrers/{subject_digest}?n=2"
    while url:
        page = await client.get(url)
        assert page.status_code == 200 and len(page.json()["manifests"]) <= 2
        seen += [m["digest"] for m in page.json()["manifests"]]
        link = page.headers.get("link")
        url = link[1:link.index(">")] if link else ""
    assert sorted(seen) == sorted(pushed) and len(seen) == 5


async def test_list_locked_entries_are_hidden_from_v2_listings(client: httpx.AsyncClient) -> None:
    _, raw = await push_image(client, "listed/app", "visible")
    await client.put("/v2/listed/app/manifests/hidden", content=raw, headers={"Content-Type": OCI_MANIFEST})
    await push_image(client, "unlisted/app", "v1", layers=0)
    assert (await client.patch("/acr/v1/listed/app/_tags/hidden", json={"listEnabled": False})).status_code == 200
    assert (await client.patch("/acr/v1/unlisted/app", json={"listEnabled": False})).status_code == 200
    assert (await client.get("/v2/listed/app/tags/list")).json()["tags"] == ["visible"]
    assert (await client.get("/v2/listed/app/tags/list", params={"n": "1"})).json()["tags"] == ["visible"]
    assert (await client.get("/v2/_catalog")).json()["repositories"] == ["listed/app"]
    assert (await client.get("/v2/listed/app/manifests/hidden")).status_code == 200  # hidden, not locked
