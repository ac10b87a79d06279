"""Hypothesis strategies for requests to every route, with hostile names, digests, references,
headers, query parameters and small bodies, mixed with valid ones so that cases reach past the
first check.

Paths and queries are built already percent-encoded, so a case can carry any text, raw
non-UTF-8 bytes, invalid escapes and huge values; header values are bytes (Latin-1 on the wire).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

HUGE_DIGITS = "9" * 5000
# superscript two, Arabic-Indic three, fullwidth one, double-struck one, superscript nine:
# str.isdigit() accepts them all, int() some of them.
DIGIT_LIKE = ["\u00b2", "\u0663", "\uff11", "\U0001d7d9", "\u2079"]


@dataclass
class Seed:
    """What the fuzzed registry holds, so that cases can name real things."""

    repository: str
    tag: str
    manifest: str  # digest
    manifest_bytes: bytes
    blobs: list[str]
    referrer: str
    upload_id: str = ""
    token: str = "fuzztoken"
    scope_map: str = "fuzzmap"
    role_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    """One request: method, encoded path and query, header bytes, body, and whose credentials."""

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, bytes], ...] = ()
    body: bytes | None = None
    auth: str = "admin"  # admin | none | own (an Authorization header among ``headers``)

    @property
    def url(self) -> str:
        """The path and query as sent."""
        return self.path + ("?" + self.query if self.query else "")


def _pct(raw: bytes) -> str:
    return "".join(f"%{b:02X}" for b in raw)


def _enc(text: str, safe: str = "") -> str:
    return quote(text, safe=safe)


def fake_digest(algorithm: str, seed: bytes) -> str:
    """A well-formed digest of content the registry does not hold."""
    return f"{algorithm}:{hashlib.new(algorithm, seed).hexdigest()}"


# Encoded query and path values: valid-looking, arbitrary text, raw bytes, broken escapes, huge.
def _hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40).map(_enc),
        st.binary(min_size=1, max_size=24).map(_pct),  # often not UTF-8
        st.sampled_from(["%", "%zz", "%C0%AF", "%ED%A0%80", "%00", "%2F", "..", "%2E%2E", "a%2Fb", "+", " "]),
        st.sampled_from(["a" * 256, "a" * 1025, "é" * 1500, "x" * 12_000]).map(_enc),
    )


def numbers() -> st.SearchStrategy[str]:
    """Values of ``n``, ``Content-Length`` and range positions, encoded for a query."""
    return st.one_of(
        st.integers(min_value=0, max_value=2**70).map(str),
        st.sampled_from(["", "0", "-1", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "00000000000000000000001",
                         HUGE_DIGITS, "0" * 5000 + "7", str(2**63 - 1), str(2**63), *DIGIT_LIKE]),
        _hostile_text(),
    ).map(lambda v: v if "%" in v else _enc(v))


def names(seed: Seed) -> st.SearchStrategy[str]:
    """Repository names as path text (slashes kept)."""
    return st.one_of(
        st.sampled_from([seed.repository, seed.repository, "fuzz/other", "ghost", "a" * 255, "a" * 256,
                         "UPPER", "a//b", "-lead", "a/../b", "a__b", "a" + "/b" * 200]).map(lambda n: _enc(n, "/")),
        st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,3}", fullmatch=True).map(lambda n: _enc(n, "/")),
        _hostile_text(),
    )


def digests(seed: Seed) -> st.SearchStrategy[str]:
    """Digests as path or query text: stored, unknown, malformed."""
    good = [seed.manifest, seed.referrer, *seed.blobs]
    return st.one_of(
        st.sampled_from(good),
        st.binary(max_size=8).map(lambda b: fake_digest("sha256", b)),
        st.binary(max_size=8).map(lambda b: fake_digest("sha512", b)),
        st.sampled_from([seed.manifest.upper(), seed.manifest[:-1], seed.manifest + "0", "sha256:", ":",
                         "sha256:" + "0" * 5000, "md5:" + "0" * 32, "sha256+b64u:" + "A" * 43, "sha384:" + "0" * 96,
                         seed.manifest.replace(":", "%3A"), "sha256:" + "g" * 64]),
        _hostile_text(),
    ).map(lambda d: d if "%" in d else _enc(d, ":"))


def references(seed: Seed) -> st.SearchStrategy[str]:
    """Tags or digests as path text."""
    return st.one_of(
        st.sampled_from([seed.tag, "latest", ".bad", "t" * 129, "_x", "a:b"]).map(_enc),
        st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True),
        digests(seed),
        _hostile_text(),
    )


def header_values() -> st.SearchStrategy[bytes]:
    """Any value a client can put in a header (no CR, LF or NUL, which servers refuse)."""
    return st.one_of(
        st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20 or c == 0x09)),
        st.sampled_from([b"", b" ", HUGE_DIGITS.encode(), "²".encode(), "é".encode("latin-1"), b"\xff" * 10]),
    )


def content_ranges() -> st.SearchStrategy[bytes]:
    """``Content-Range`` values of a PATCH."""
    position = st.one_of(st.integers(min_value=0, max_value=2**65).map(str),
                         st.sampled_from([HUGE_DIGITS, *DIGIT_LIKE, "-1", ""]))
    return st.one_of(
        st.tuples(st.sampled_from(["", "bytes ", "bytes="]), position, position, st.sampled_from(["", "/*", "/9"]))
        .map(lambda t: f"{t[0]}{t[1]}-{t[2]}{t[3]}".encode()),
        header_values(),
    )


def byte_ranges() -> st.SearchStrategy[bytes]:
    """``Range`` values of a blob GET."""
    position = st.one_of(st.integers(min_value=0, max_value=2**65).map(str),
                         st.sampled_from([HUGE_DIGITS, *DIGIT_LIKE, ""]))
    return st.one_of(
        st.tuples(position, position).map(lambda t: f"bytes={t[0]}-{t[1]}".encode()),
        st.sampled_from([b"bytes=0-1,3-4", b"bytes=-0", b"items=0-1", b"bytes=" + HUGE_DIGITS.encode() + b"-"]),
        header_values(),
    )


def json_bodies() -> st.SearchStrategy[bytes]:
    """Small JSON bodies of the metadata and admin APIs: plausible, wrong-typed, deep, broken."""
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
    values = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=12), inner, max_size=4), max_leaves=12)
    keys = st.sampled_from(["deleteEnabled", "writeEnabled", "readEnabled", "listEnabled", "actions", "description",
                            "scopeMap", "status", "name", "expiry", "principalId", "role", "repository",
                            "anonymousPullEnabled", "roleAssignmentMode"])
    return st.one_of(
        st.dictionaries(keys, values, max_size=4).map(lambda d: json.dumps(d).encode()),
        st.integers(min_value=1, max_value=5000).map(lambda d: b"[" * d + b"]" * d),
        st.integers(min_value=1, max_value=5000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
        st.sampled_from([b"", b"{", b"null", b'"x"', b"\xff\xfe", b'{"description": "\\ud800"}',
                         b'{"actions": ["\\udfff"]}', b'{"deleteEnabled": ' + HUGE_DIGITS.encode() + b"}",
                         b'{"expiry": "9999-12-31T23:59:59+14:00"}', b'{"expiry": "0001-01-01T00:00:00-12:00"}']),
        st.binary(max_size=40),
    )


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" if v is not None else k for k, v in pairs)


def _params(**values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A query of any subset of the named parameters (a parameter may also repeat)."""
    items = [st.tuples(st.just(k), v) for k, v in values.items()]
    return st.lists(st.one_of(*items), max_size=3).map(_query) if items else st.just("")


@st.composite
def _with_headers(draw: st.DrawFn, method: str, path: str, query: str = "", body: bytes | None = None,
                  extra: tuple[tuple[str, bytes], ...] = ()) -> Case:
    auth = draw(st.sampled_from(["admin"] * 8 + ["none", "own"]))
    headers = list(extra)
    if auth == "own":
        headers.append(("Authorization", draw(st.one_of(header_values(), st.sampled_from([
            b"Basic", b"Basic !!!", b"Basic " + b"QQ==" * 3000, b"Bearer", b"Bearer a.b.c", b"Bearer " + b"a" * 9000,
            b"Basic Zm9vL2Jhcjp4",  # foo/bar:x
        ])))))
    if draw(st.booleans()):
        headers.append((draw(st.sampled_from(["Content-Length", "Content-Type", "Accept", "Host",
                                              "X-Forwarded-Proto", "User-Agent"])), draw(header_values())))
    return Case(method, path, query, tuple(headers), body, auth)


def cases(seed: Seed) -> st.SearchStrategy[Case]:
    """A request to any route of the registry."""
    name, ref, digest = names(seed), references(seed), digests(seed)
    text = _hostile_text()
    page = {"n": numbers(), "last": text}
    upload = st.one_of(st.just(seed.upload_id), st.just(seed.upload_id), text)
    blob_body = st.one_of(st.none(), st.binary(max_size=64))
    v2 = st.one_of(
        st.sampled_from(["GET", "HEAD", "POST", "DELETE"]).flatmap(lambda m: _with_headers(m, "/v2/")),
        _params(**page).flatmap(lambda q: _with_headers("GET", "/v2/_catalog", q)),
        st.tuples(st.sampled_from(["GET", "HEAD", "DELETE", "PUT"]), name, ref, st.one_of(
            st.just(seed.manifest_bytes), st.binary(max_size=64))).flatmap(
            lambda t: _with_headers(t[0], f"/v2/{t[1]}/manifests/{t[2]}", body=t[3] if t[0] == "PUT" else None)),
        st.tuples(name, _params(mount=digest, **{"from": name}, digest=digest), blob_body).flatmap(
            lambda t: _with_headers("POST", f"/v2/{t[0]}/blobs/uploads/", t[1], t[2])),
        st.tuples(st.sampled_from(["GET", "PATCH", "PUT", "DELETE"]), name, upload, _params(digest=digest),
                  blob_body, st.lists(st.tuples(st.just("Content-Range"), content_ranges()), max_size=1)).flatmap(
            lambda t: _with_headers(t[0], f"/v2/{t[1]}/blobs/uploads/{t[2]}", t[3], t[4], tuple(t[5]))),
        st.tuples(st.sampled_from(["GET", "HEAD", "DELETE"]), name, digest,
                  st.lists(st.tuples(st.just("Range"), byte_ranges()), max_size=1)).flatmap(
            lambda t: _with_headers(t[0], f"/v2/{t[1]}/blobs/{t[2]}", extra=tuple(t[3]))),
        st.tuples(name, _params(**page)).flatmap(lambda t: _with_headers("GET", f"/v2/{t[0]}/tags/list", t[1])),
        st.tuples(name, digest, _params(artifactType=text, **page)).flatmap(
            lambda t: _with_headers("GET", f"/v2/{t[0]}/referrers/{t[1]}", t[2])),
    )
    scope = st.one_of(st.sampled_from([f"repository:{seed.repository}:pull,push", "registry:catalog:*",
                                       "repository:a:b:c:d", "repository::", ":::", "registry:admin:*"]).map(_enc),
                      text)
    form = st.lists(st.tuples(st.sampled_from(["grant_type", "username", "password", "refresh_token", "scope",
                                               "service", "access_token", "tenant", "access_type"]),
                              st.one_of(st.sampled_from(["password", "refresh_token", "access_token", "offline"]),
                                        text)), max_size=5).map(lambda p: _query(p).encode())
    oauth = st.one_of(
        _params(scope=scope, service=text).flatmap(lambda q: _with_headers("GET", "/oauth2/token", q)),
        st.tuples(st.sampled_from(["/oauth2/token", "/oauth2/exchange"]), st.one_of(form, st.binary(max_size=40)))
        .flatmap(lambda t: _with_headers("POST", t[0], body=t[1], extra=(
            ("Content-Type", b"application/x-www-form-urlencoded"),))),
    )
    listing = {"orderby": st.one_of(st.sampled_from(["timedesc", "timeasc", ""]), text), "digest": digest, **page}
    acr = st.one_of(
        _params(**page).flatmap(lambda q: _with_headers("GET", "/acr/v1/_catalog", q)),
        st.tuples(st.sampled_from(["GET", "PATCH", "DELETE"]), name, json_bodies()).flatmap(
            lambda t: _with_headers(t[0], f"/acr/v1/{t[1]}", body=t[2] if t[0] == "PATCH" else None)),
        st.tuples(st.sampled_from(["_tags", "_manifests"]), name, _params(**listing)).flatmap(
            lambda t: _with_headers("GET", f"/acr/v1/{t[1]}/{t[0]}", t[2])),
        st.tuples(st.sampled_from(["GET", "PATCH", "DELETE"]), st.sampled_from(["_tags", "_manifests"]), name, ref,
                  json_bodies()).flatmap(
            lambda t: _with_headers(t[0], f"/acr/v1/{t[2]}/{t[1]}/{t[3]}", body=t[4] if t[0] == "PATCH" else None)),
    )
    token = st.one_of(st.sampled_from([seed.token, seed.scope_map, "nope-token", "x", "a" * 51]), text)
    admin = st.one_of(
        st.tuples(st.sampled_from(["GET", "PATCH"]), json_bodies()).flatmap(
            lambda t: _with_headers(t[0], "/acr/admin/options", body=t[1] if t[0] == "PATCH" else None)),
        st.tuples(st.sampled_from(["scopemaps", "tokens"]), st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]), token,
                  json_bodies()).flatmap(lambda t: _with_headers(
                      t[1], f"/acr/admin/{t[0]}/{t[2]}", body=t[3] if t[1] in ("PUT", "PATCH") else None)),
        st.tuples(token, json_bodies()).flatmap(
            lambda t: _with_headers("POST", f"/acr/admin/tokens/{t[0]}/passwords", body=t[1])),
        st.tuples(st.sampled_from(["GET", "POST"]), _params(principalId=text), json_bodies()).flatmap(
            lambda t: _with_headers(t[0], "/acr/admin/roleassignments", t[1], t[2] if t[0] == "POST" else None)),
        text.flatmap(lambda i: _with_headers("DELETE", f"/acr/admin/roleassignments/{i}")),
    )
    return st.one_of(v2, v2, oauth, acr, admin)
