"""The core API's route table: each route with its operation and its access rule (who may call
it). Starlette's routes, what each request needs, the lock checks and the mount rewrite all come
from these lines; a route no line serves requires ``registry:admin:*`` (deny by default).

To add a route, add a :class:`RouteSpec` here (or, for a capability, in its own ``register``);
anything under ``/acr/admin/`` takes :data:`ADMIN_ACCESS`.
"""

from __future__ import annotations

from shared.api import admin, blobs, discovery, manifests, metadata, oauth
from shared.auth.permissions import ADMIN, CATALOG, DELETE, META_READ, META_WRITE, PULL, PUSH
from shared.kernel.operations import Operation as Op
from shared.kernel.routes import Access, RouteSpec

ADMIN_ACCESS = Access.registry(ADMIN)
_PULL = Access.repository(PULL)
_PUSH = Access.repository(PUSH, (PULL, PUSH))
_DELETE = Access.repository(DELETE)
_READ_META = Access.repository(META_READ)
_WRITE_META = Access.repository(META_WRITE)
_GET = ("GET", "HEAD")

_V2 = "/v2/{name:path}"
DISTRIBUTION = (
    RouteSpec("/v2/", _GET, discovery.api_root, Op.API_ROOT, Access.any_caller()),
    RouteSpec("/v2/_catalog", ("GET",), discovery.catalog, Op.CATALOG, Access.registry(CATALOG)),
    RouteSpec(_V2 + "/manifests/{reference}", _GET, manifests.get_manifest, Op.READ_MANIFEST, _PULL),
    RouteSpec(_V2 + "/manifests/{reference}", ("PUT",), manifests.put_manifest, Op.WRITE_MANIFEST, _PUSH),
    RouteSpec(_V2 + "/manifests/{reference}", ("DELETE",), manifests.delete_manifest, Op.DELETE_MANIFEST, _DELETE),
    RouteSpec(_V2 + "/blobs/uploads/", ("POST",), blobs.start_upload, Op.START_UPLOAD,
              Access.repository(PUSH, (PULL, PUSH), mount_source=True)),
    RouteSpec(_V2 + "/blobs/uploads/{upload_id}", ("GET",), blobs.upload_status, Op.READ_UPLOAD, _PUSH),
    RouteSpec(_V2 + "/blobs/uploads/{upload_id}", ("PATCH",), blobs.patch_upload, Op.WRITE_UPLOAD, _PUSH),
    RouteSpec(_V2 + "/blobs/uploads/{upload_id}", ("PUT",), blobs.finish_upload, Op.FINISH_UPLOAD, _PUSH),
    RouteSpec(_V2 + "/blobs/uploads/{upload_id}", ("DELETE",), blobs.cancel_upload, Op.CANCEL_UPLOAD, _PUSH),
    RouteSpec(_V2 + "/blobs/{digest}", _GET, blobs.get_blob, Op.READ_BLOB, _PULL),
    RouteSpec(_V2 + "/blobs/{digest}", ("DELETE",), blobs.delete_blob, Op.DELETE_BLOB, _DELETE),
    RouteSpec(_V2 + "/tags/list", ("GET",), discovery.list_tags, Op.LIST_TAGS, _PULL),
    RouteSpec(_V2 + "/referrers/{digest}", ("GET",), discovery.referrers, Op.LIST_REFERRERS, _PULL),
)

TOKEN_SERVICE = (
    RouteSpec("/oauth2/token", ("GET",), oauth.get_token, Op.LOGIN, Access.public()),
    RouteSpec("/oauth2/token", ("POST",), oauth.post_token, Op.LOGIN, Access.public()),
    RouteSpec("/oauth2/exchange", ("POST",), oauth.exchange, Op.LOGIN, Access.public()),
)

_ACR = "/acr/v1/{name:path}"
METADATA = (
    RouteSpec("/acr/v1/_catalog", ("GET",), metadata.catalog, Op.CATALOG, Access.registry(CATALOG)),
    RouteSpec(_ACR + "/_tags", ("GET",), metadata.list_tags, Op.READ_METADATA, _READ_META),
    RouteSpec(_ACR + "/_tags/{reference}", ("GET",), metadata.tag_properties, Op.READ_METADATA, _READ_META),
    RouteSpec(_ACR + "/_tags/{reference}", ("PATCH",), metadata.update_tag, Op.WRITE_METADATA, _WRITE_META),
    RouteSpec(_ACR + "/_tags/{reference}", ("DELETE",), metadata.delete_tag, Op.DELETE_TAG, _DELETE),
    RouteSpec(_ACR + "/_manifests", ("GET",), metadata.list_manifests, Op.READ_METADATA, _READ_META),
    RouteSpec(_ACR + "/_manifests/{reference}", ("GET",), metadata.manifest_properties, Op.READ_METADATA,
              _READ_META),
    RouteSpec(_ACR + "/_manifests/{reference}", ("PATCH",), metadata.update_manifest, Op.WRITE_METADATA,
              _WRITE_META),
    RouteSpec(_ACR + "/_manifests/{reference}", ("DELETE",), metadata.delete_manifest, Op.DELETE_MANIFEST,
              _DELETE),
)

_A = "/acr/admin"
ADMINISTRATION = (
    RouteSpec(_A + "/options", ("GET",), admin.get_options, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/options", ("PATCH",), admin.update_options, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/scopemaps", ("GET",), admin.list_scope_maps, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/scopemaps/{name}", ("GET",), admin.get_scope_map, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/scopemaps/{name}", ("PUT",), admin.put_scope_map, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/scopemaps/{name}", ("DELETE",), admin.delete_scope_map, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/tokens", ("GET",), admin.list_tokens, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/tokens/{name}", ("GET",), admin.get_token, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/tokens/{name}", ("PUT", "PATCH"), admin.put_token, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/tokens/{name}", ("DELETE",), admin.delete_token, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/tokens/{name}/passwords", ("POST",), admin.new_password, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/roleassignments", ("GET",), admin.list_roles, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/roleassignments", ("POST",), admin.assign_role, Op.ADMIN, ADMIN_ACCESS),
    RouteSpec(_A + "/roleassignments/{id}", ("DELETE",), admin.remove_role, Op.ADMIN, ADMIN_ACCESS),
)

#: Repository properties last: ``/acr/v1/{name}`` would match the longer paths above too.
REPOSITORY_METADATA = (
    RouteSpec(_ACR, ("GET",), metadata.repository_properties, Op.READ_METADATA, _READ_META),
    RouteSpec(_ACR, ("PATCH",), metadata.update_repository, Op.WRITE_METADATA, _WRITE_META),
    RouteSpec(_ACR, ("DELETE",), metadata.delete_repository, Op.DELETE_REPOSITORY, _DELETE),
)

#: The core API, in matching order.
CORE_ROUTES = (*DISTRIBUTION, *TOKEN_SERVICE, *METADATA, *ADMINISTRATION, *REPOSITORY_METADATA)
