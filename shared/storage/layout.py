"""Every blob name and table key the registry uses, in one place.

One storage account holds everything (a geo-replica is another account with the same layout)::

    container <prefix>                       (blob container)
      data/<upload-uuid>                     content of one blob: a block blob whose blocks were
                                             staged by the upload's PATCHes and committed (once) by
                                             its PUT; metadata digest=<algorithm:hex> once verified
      data/<algorithm>-<hex>                 content geo-replication copied in from another region
      manifests/<algorithm>/<hex>            manifest bytes too large to keep inline in a table row
      deadletter/<subscription>/<event-id>.json  an event the local Event Grid could not deliver

    table <prefix>blobs                      the content-addressed index, shared by all repositories
      PK <algorithm>:<hex>  RK ""            {location: data/<uuid>, size}

    table <prefix>uploads                    upload sessions, so any instance can serve any request
      PK <upload-uuid>      RK ""            {repository, offset, segments, algorithm, hash_state,
                                              state: "ended" once a request claimed the session}

    table <prefix>repos                      one partition per repository, so that a manifest, its
                                             tags and its referrer rows commit in one transaction
      PK "_catalog"         RK enc(name)     {name}                 the catalog
      PK enc(name)          RK m|<digest>    {media_type, size, content | location, subject, ...}
                            RK t|<tag>       {digest, media_type, size}
                            RK l|<digest>    {size}                 blob linked into the repository
                            RK r|<subject>|<digest>  {media_type, size, artifact_type, annotations}
                            RK o|<event-id>  {event, created}       outbox: an event not yet published,
                                             written in the transaction of the commit it describes
      (the catalog, m| and t| rows may carry lock flags can_read, can_write, can_delete, can_list;
       a missing flag means true; m| rows also carry architecture, os and image_size)

    table <prefix>webhooks                   webhook configuration and delivery log
      PK "_webhooks"        RK <name>        {service_uri, custom_headers, status, scope, actions, ...}
      PK d|<name>           RK <inverted ms>|<uuid>  {event_id, action, request, response}  newest first

    table <prefix>events                     what each event consumer has done with each event
      PK w|<webhook>        RK <event-id>    one webhook delivery: {event (the payload), action, status
                                             (queued | sending | delivered | dead), seq, attempt,
                                             queued, claimed_until, last_error, last_status, ...}

    queue <prefix>-webhooks                  one message per scheduled attempt of a webhook delivery:
                                             {"webhook", "event", "seq", "attempt"} (base64 JSON); a
                                             retry is a new message with a visibility timeout
    queue <prefix>-webhooks-poison           messages the delivery function failed on five times
                                             (the Functions host's poison queue, mimicked locally)

    table <prefix>replication                geo-replication's work, in the region where a change was made
      PK q|<target-region>  RK <event-id>    {event (the payload JSON), queued, attempts, last_error}: a change
                                             not yet replicated to the target region (deleted once it is)
      PK "_regions"         RK <region>      {endpoint_enabled, updated}  (home region) a region's endpoint switch
      PK x|enc(name)        RK m|<digest>    {deleted}  a tombstone: the manifest (and so its tags) or the tag was
                            RK t|<tag>       deleted here and the delete is not yet replicated to every region, so
                            RK l|<digest>    a read that misses here does not serve another region's older copy
                                             (deleted once every region has the delete, ignored after a week);
                                             l| is a blob deleted from the repository (unlinked)

    table <prefix>auth                       identities and permissions (shared/auth/store.py)
      PK "config"           RK "registry"    {anonymous_pull, abac}
      PK "scopemap"         RK <name>        {actions (JSON list), description}
      PK "token"            RK <name>        {scope_map, status, password1, password1_expiry,
                                              password2, password2_expiry}   (scrypt hashes)
      PK "role"             RK <uuid>        {principal, role, repository}

Table keys may not contain ``/``. ``enc`` maps a repository name to a key that sorts in the same
order as the name: ``/`` (0x2F) becomes ``0`` and each digit moves up one (``0``-``9`` to
``1``-``:``), which keeps ``-`` < ``.`` < ``/`` < digits < ``_`` < letters.
"""

from __future__ import annotations

from dataclasses import dataclass

CATALOG_PARTITION = "_catalog"
MANIFEST = "m|"
TAG = "t|"
LINK = "l|"
REFERRER = "r|"
OUTBOX = "o|"
WEBHOOKS_PARTITION = "_webhooks"
# The character after "|" sorts after every tag, digest and key character used in row keys.
RANGE_END = "}"

_ENCODE = str.maketrans({"/": "0", **{str(d): chr(ord("1") + d) for d in range(10)}})
_DECODE = str.maketrans({v: k for k, v in {"/": "0", **{str(d): chr(ord("1") + d) for d in range(10)}}.items()})


@dataclass(frozen=True)
class TableSpec:
    """A table of the registry, named ``<prefix><name>`` in storage."""

    name: str

    def table_name(self, prefix: str) -> str:
        """The table's name in storage under ``prefix``."""
        return f"{prefix}{self.name}"


BLOBS = TableSpec("blobs")  # the content-addressed blob index
UPLOADS = TableSpec("uploads")  # upload sessions
REPOS = TableSpec("repos")  # repository metadata
WEBHOOKS = TableSpec("webhooks")  # webhook configuration and delivery log
EVENTS = TableSpec("events")  # what each event consumer has done with each event
AUTH = TableSpec("auth")  # identities and permissions
REPLICATION = TableSpec("replication")  # geo-replication's pending work and region switches
#: Every table of the registry: the storage clients open these, and ``ensure`` creates them.
TABLES = (BLOBS, UPLOADS, REPOS, WEBHOOKS, EVENTS, AUTH)


def container(prefix: str) -> str:
    """The blob container of the registry."""
    return prefix


def blobs_table(prefix: str) -> str:
    """The content-addressed blob index table."""
    return BLOBS.table_name(prefix)


def uploads_table(prefix: str) -> str:
    """The upload session table."""
    return UPLOADS.table_name(prefix)


def repos_table(prefix: str) -> str:
    """The repository metadata table."""
    return REPOS.table_name(prefix)


def webhooks_table(prefix: str) -> str:
    """The webhook configuration and delivery log table."""
    return WEBHOOKS.table_name(prefix)


def events_table(prefix: str) -> str:
    """The table of events each consumer has processed."""
    return EVENTS.table_name(prefix)


def delivery_queue(prefix: str) -> str:
    """The queue of webhook delivery attempts (``%REGISTRY_STORAGE_PREFIX%`` in a trigger binding)."""
    return f"{prefix}-webhooks"


def poison_queue(queue: str) -> str:
    """The queue the Functions host moves a message to after its last failed dequeue."""
    return f"{queue}-poison"


def queues(prefix: str) -> tuple[str, ...]:
    """Every queue of the registry (``ensure`` creates them)."""
    return delivery_queue(prefix), poison_queue(delivery_queue(prefix))


def webhook_delivery_partition(webhook: str) -> str:
    """Partition of one webhook's deliveries (their state, dead letters included)."""
    return f"w|{webhook}"


def dead_letter_blob(subscription: str, event_id: str) -> str:
    """Where the local Event Grid dead-letters an event of ``subscription``."""
    return f"deadletter/{subscription}/{event_id}.json"


def outbox_key(event_id: str) -> str:
    """Row key of an unpublished event in its repository's partition."""
    return OUTBOX + event_id


def delivery_partition(webhook: str) -> str:
    """Partition of a webhook's delivery log."""
    return f"d|{webhook}"


def delivery_key(epoch_ms: int, delivery_id: str) -> str:
    """Row key of one delivery; inverted time, so a partition lists newest first."""
    return f"{10**13 - epoch_ms:013d}|{delivery_id}"


REGIONS_PARTITION = "_regions"


def replication_partition(target_region: str) -> str:
    """Partition of the changes not yet replicated to ``target_region``."""
    return f"q|{target_region}"


TOMBSTONE = "x|"


def tombstone_partition(repository: str) -> str:
    """Partition of the tombstones of ``repository``'s deleted manifests, tags and blobs (row keys
    :func:`manifest_key`, :func:`tag_key` and :func:`link_key`)."""
    return TOMBSTONE + encode_repository(repository)


def auth_table(prefix: str) -> str:
    """The identity and permission table."""
    return AUTH.table_name(prefix)


AUTH_CONFIG = ("config", "registry")
SCOPE_MAP_PARTITION = "scopemap"
TOKEN_PARTITION = "token"  # noqa: S105 - a table partition name
ROLE_PARTITION = "role"
LOCK_FLAGS = ("can_delete", "can_write", "can_read", "can_list")


def data_blob(upload_id: str) -> str:
    """The blob an upload stages its blocks in; after the commit it holds the content."""
    return f"data/{upload_id}"


def replicated_blob(digest: str) -> str:
    """Where geo-replication copies the content of ``digest`` into a region: one name per digest,
    so copies that race or repeat write the same blob."""
    algorithm, _, hexpart = digest.partition(":")
    return f"data/{algorithm}-{hexpart}"


def manifest_blob(digest: str) -> str:
    """Where a manifest too large for a table row keeps its bytes."""
    algorithm, _, hexpart = digest.partition(":")
    return f"manifests/{algorithm}/{hexpart}"


def encode_repository(name: str) -> str:
    """The order-preserving table key of a (validated) repository name."""
    return name.translate(_ENCODE)


def decode_repository(key: str) -> str:
    """The repository name of a key made by :func:`encode_repository`."""
    return key.translate(_DECODE)


def manifest_key(digest: str) -> str:
    """Row key of a manifest in its repository's partition."""
    return MANIFEST + digest


def tag_key(tag: str) -> str:
    """Row key of a tag."""
    return TAG + tag


def link_key(digest: str) -> str:
    """Row key of a blob linked into a repository."""
    return LINK + digest


def referrer_key(subject: str, digest: str) -> str:
    """Row key of a manifest ``digest`` that refers to ``subject``."""
    return f"{REFERRER}{subject}|{digest}"


def referrer_prefix(subject: str) -> str:
    """Row key prefix of every referrer of ``subject``."""
    return f"{REFERRER}{subject}|"
