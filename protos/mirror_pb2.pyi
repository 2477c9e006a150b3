import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Policy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_UNSPECIFIED: _ClassVar[Policy]
    POLICY_IMMEDIATE: _ClassVar[Policy]
    POLICY_ON_DEMAND: _ClassVar[Policy]
    POLICY_STREAMED: _ClassVar[Policy]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_QUEUED: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_COMPLETED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELED: _ClassVar[TaskState]

class ProgressState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROGRESS_STATE_UNSPECIFIED: _ClassVar[ProgressState]
    PROGRESS_STATE_RUNNING: _ClassVar[ProgressState]
    PROGRESS_STATE_COMPLETED: _ClassVar[ProgressState]
    PROGRESS_STATE_FAILED: _ClassVar[ProgressState]
    PROGRESS_STATE_SKIPPED: _ClassVar[ProgressState]

class TaskEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_EVENT_KIND_UNSPECIFIED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_SNAPSHOT: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_STATE: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_PROGRESS: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_WARNING: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_FINISHED: _ClassVar[TaskEventKind]

class Membership(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_UNSPECIFIED: _ClassVar[Membership]
    MEMBERSHIP_PRESENT: _ClassVar[Membership]
    MEMBERSHIP_ADDED: _ClassVar[Membership]
    MEMBERSHIP_REMOVED: _ClassVar[Membership]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_ADDED: _ClassVar[ChangeKind]
    CHANGE_KIND_REMOVED: _ClassVar[ChangeKind]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_EDITOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class VersionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_SOURCE_UNSPECIFIED: _ClassVar[VersionSource]
    VERSION_SOURCE_CREATED: _ClassVar[VersionSource]
    VERSION_SOURCE_SYNC: _ClassVar[VersionSource]
    VERSION_SOURCE_PUSH: _ClassVar[VersionSource]
    VERSION_SOURCE_OPERATION: _ClassVar[VersionSource]
POLICY_UNSPECIFIED: Policy
POLICY_IMMEDIATE: Policy
POLICY_ON_DEMAND: Policy
POLICY_STREAMED: Policy
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_COMPLETED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELED: TaskState
PROGRESS_STATE_UNSPECIFIED: ProgressState
PROGRESS_STATE_RUNNING: ProgressState
PROGRESS_STATE_COMPLETED: ProgressState
PROGRESS_STATE_FAILED: ProgressState
PROGRESS_STATE_SKIPPED: ProgressState
TASK_EVENT_KIND_UNSPECIFIED: TaskEventKind
TASK_EVENT_KIND_SNAPSHOT: TaskEventKind
TASK_EVENT_KIND_STATE: TaskEventKind
TASK_EVENT_KIND_PROGRESS: TaskEventKind
TASK_EVENT_KIND_WARNING: TaskEventKind
TASK_EVENT_KIND_FINISHED: TaskEventKind
MEMBERSHIP_UNSPECIFIED: Membership
MEMBERSHIP_PRESENT: Membership
MEMBERSHIP_ADDED: Membership
MEMBERSHIP_REMOVED: Membership
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_ADDED: ChangeKind
CHANGE_KIND_REMOVED: ChangeKind
ROLE_UNSPECIFIED: Role
ROLE_VIEWER: Role
ROLE_EDITOR: Role
ROLE_ADMIN: Role
VERSION_SOURCE_UNSPECIFIED: VersionSource
VERSION_SOURCE_CREATED: VersionSource
VERSION_SOURCE_SYNC: VersionSource
VERSION_SOURCE_PUSH: VersionSource
VERSION_SOURCE_OPERATION: VersionSource

class Remote(_message.Message):
    __slots__ = ("name", "uid", "url", "upstream_name", "policy", "download_concurrency", "include_tags", "exclude_tags", "sigstore", "proxy_url", "proxy_username", "proxy_password", "proxy_password_set", "ssl_ca_certificate", "ssl_client_certificate", "ssl_client_key", "ssl_client_key_set", "ssl_validation", "username", "password", "password_set", "connect_timeout", "sock_read_timeout", "total_timeout", "max_retries", "headers", "include_foreign_layers", "rate_limit", "token_realm_allowlist", "signed_only", "create_time", "update_time", "header_names")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TAGS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_TAGS_FIELD_NUMBER: _ClassVar[int]
    SIGSTORE_FIELD_NUMBER: _ClassVar[int]
    PROXY_URL_FIELD_NUMBER: _ClassVar[int]
    PROXY_USERNAME_FIELD_NUMBER: _ClassVar[int]
    PROXY_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PROXY_PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    SSL_CA_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SSL_CLIENT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SSL_CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SSL_CLIENT_KEY_SET_FIELD_NUMBER: _ClassVar[int]
    SSL_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    CONNECT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SOCK_READ_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FOREIGN_LAYERS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REALM_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    SIGNED_ONLY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HEADER_NAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    url: str
    upstream_name: str
    policy: Policy
    download_concurrency: int
    include_tags: _containers.RepeatedScalarFieldContainer[str]
    exclude_tags: _containers.RepeatedScalarFieldContainer[str]
    sigstore: str
    proxy_url: str
    proxy_username: str
    proxy_password: str
    proxy_password_set: bool
    ssl_ca_certificate: str
    ssl_client_certificate: str
    ssl_client_key: str
    ssl_client_key_set: bool
    ssl_validation: bool
    username: str
    password: str
    password_set: bool
    connect_timeout: float
    sock_read_timeout: float
    total_timeout: float
    max_retries: int
    headers: _containers.ScalarMap[str, str]
    include_foreign_layers: bool
    rate_limit: float
    token_realm_allowlist: _containers.RepeatedScalarFieldContainer[str]
    signed_only: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    header_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., url: _Optional[str] = ..., upstream_name: _Optional[str] = ..., policy: _Optional[_Union[Policy, str]] = ..., download_concurrency: _Optional[int] = ..., include_tags: _Optional[_Iterable[str]] = ..., exclude_tags: _Optional[_Iterable[str]] = ..., sigstore: _Optional[str] = ..., proxy_url: _Optional[str] = ..., proxy_username: _Optional[str] = ..., proxy_password: _Optional[str] = ..., proxy_password_set: _Optional[bool] = ..., ssl_ca_certificate: _Optional[str] = ..., ssl_client_certificate: _Optional[str] = ..., ssl_client_key: _Optional[str] = ..., ssl_client_key_set: _Optional[bool] = ..., ssl_validation: _Optional[bool] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., password_set: _Optional[bool] = ..., connect_timeout: _Optional[float] = ..., sock_read_timeout: _Optional[float] = ..., total_timeout: _Optional[float] = ..., max_retries: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., include_foreign_layers: _Optional[bool] = ..., rate_limit: _Optional[float] = ..., token_realm_allowlist: _Optional[_Iterable[str]] = ..., signed_only: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., header_names: _Optional[_Iterable[str]] = ...) -> None: ...

class Repository(_message.Message):
    __slots__ = ("name", "uid", "description", "latest_version", "versions", "retain_versions", "mirror", "create_time", "update_time", "latest_version_number")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RETAIN_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    description: str
    latest_version: str
    versions: str
    retain_versions: int
    mirror: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    latest_version_number: int
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., description: _Optional[str] = ..., latest_version: _Optional[str] = ..., versions: _Optional[str] = ..., retain_versions: _Optional[int] = ..., mirror: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_version_number: _Optional[int] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("name", "number", "base_version", "create_time", "content_summary", "source", "principal", "source_detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: int
    base_version: str
    create_time: _timestamp_pb2.Timestamp
    content_summary: ContentSummary
    source: VersionSource
    principal: str
    source_detail: str
    def __init__(self, name: _Optional[str] = ..., number: _Optional[int] = ..., base_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_summary: _Optional[_Union[ContentSummary, _Mapping]] = ..., source: _Optional[_Union[VersionSource, str]] = ..., principal: _Optional[str] = ..., source_detail: _Optional[str] = ...) -> None: ...

class ContentSummary(_message.Message):
    __slots__ = ("added", "removed", "present")
    class AddedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RemovedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PresentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    added: _containers.ScalarMap[str, int]
    removed: _containers.ScalarMap[str, int]
    present: _containers.ScalarMap[str, int]
    def __init__(self, added: _Optional[_Mapping[str, int]] = ..., removed: _Optional[_Mapping[str, int]] = ..., present: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "kind", "state", "create_time", "start_time", "finish_time", "progress_reports", "error", "created_resources", "reserved_resources", "warnings", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_REPORTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RESERVED_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    state: TaskState
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    progress_reports: _containers.RepeatedCompositeFieldContainer[ProgressReport]
    error: TaskError
    created_resources: _containers.RepeatedScalarFieldContainer[str]
    reserved_resources: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress_reports: _Optional[_Iterable[_Union[ProgressReport, _Mapping]]] = ..., error: _Optional[_Union[TaskError, _Mapping]] = ..., created_resources: _Optional[_Iterable[str]] = ..., reserved_resources: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ProgressReport(_message.Message):
    __slots__ = ("code", "message", "done", "total", "done_bytes", "total_bytes", "state", "unit")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    done: int
    total: int
    done_bytes: int
    total_bytes: int
    state: ProgressState
    unit: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., done_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ..., state: _Optional[_Union[ProgressState, str]] = ..., unit: _Optional[str] = ...) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("code", "reason", "message", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    message: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Content(_message.Message):
    __slots__ = ("blob", "manifest", "tag", "signature")
    BLOB_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    blob: Blob
    manifest: Manifest
    tag: Tag
    signature: Signature
    def __init__(self, blob: _Optional[_Union[Blob, _Mapping]] = ..., manifest: _Optional[_Union[Manifest, _Mapping]] = ..., tag: _Optional[_Union[Tag, _Mapping]] = ..., signature: _Optional[_Union[Signature, _Mapping]] = ...) -> None: ...

class Blob(_message.Message):
    __slots__ = ("digest", "size", "media_type", "stored")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size: int
    media_type: str
    stored: bool
    def __init__(self, digest: _Optional[str] = ..., size: _Optional[int] = ..., media_type: _Optional[str] = ..., stored: _Optional[bool] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("digest", "media_type", "size", "config_digest", "blobs", "manifests", "artifact_type", "subject")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    digest: str
    media_type: str
    size: int
    config_digest: str
    blobs: _containers.RepeatedScalarFieldContainer[str]
    manifests: _containers.RepeatedCompositeFieldContainer[ManifestReference]
    artifact_type: str
    subject: str
    def __init__(self, digest: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., config_digest: _Optional[str] = ..., blobs: _Optional[_Iterable[str]] = ..., manifests: _Optional[_Iterable[_Union[ManifestReference, _Mapping]]] = ..., artifact_type: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...

class ManifestReference(_message.Message):
    __slots__ = ("digest", "media_type", "os", "architecture", "variant")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    digest: str
    media_type: str
    os: str
    architecture: str
    variant: str
    def __init__(self, digest: _Optional[str] = ..., media_type: _Optional[str] = ..., os: _Optional[str] = ..., architecture: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("name", "manifest_digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    manifest_digest: str
    def __init__(self, name: _Optional[str] = ..., manifest_digest: _Optional[str] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("name", "digest", "type", "key_id", "timestamp", "creator", "manifest_digest", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    type: str
    key_id: str
    timestamp: _timestamp_pb2.Timestamp
    creator: str
    manifest_digest: str
    size: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., type: _Optional[str] = ..., key_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., creator: _Optional[str] = ..., manifest_digest: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ContentChange(_message.Message):
    __slots__ = ("kind", "content")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    kind: ChangeKind
    content: Content
    def __init__(self, kind: _Optional[_Union[ChangeKind, str]] = ..., content: _Optional[_Union[Content, _Mapping]] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("name", "base_path", "repository", "version", "registry_path", "description", "create_time", "update_time", "public")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_PATH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_PATH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_path: str
    repository: str
    version: str
    registry_path: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    public: bool
    def __init__(self, name: _Optional[str] = ..., base_path: _Optional[str] = ..., repository: _Optional[str] = ..., version: _Optional[str] = ..., registry_path: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., public: _Optional[bool] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("name", "role", "description", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("name", "description", "create_time", "expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Grant(_message.Message):
    __slots__ = ("name", "repository", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    repository: str
    role: Role
    def __init__(self, name: _Optional[str] = ..., repository: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class CreateRepositoryRequest(_message.Message):
    __slots__ = ("repository_id", "repository")
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    repository_id: str
    repository: Repository
    def __init__(self, repository_id: _Optional[str] = ..., repository: _Optional[_Union[Repository, _Mapping]] = ...) -> None: ...

class CreateRepositoryResponse(_message.Message):
    __slots__ = ("repository",)
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ...) -> None: ...

class GetRepositoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetRepositoryResponse(_message.Message):
    __slots__ = ("repository",)
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ...) -> None: ...

class ListRepositoriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRepositoriesResponse(_message.Message):
    __slots__ = ("repositories", "next_page_token")
    REPOSITORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    repositories: _containers.RepeatedCompositeFieldContainer[Repository]
    next_page_token: str
    def __init__(self, repositories: _Optional[_Iterable[_Union[Repository, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateRepositoryRequest(_message.Message):
    __slots__ = ("repository", "update_mask")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateRepositoryResponse(_message.Message):
    __slots__ = ("repository",)
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ...) -> None: ...

class DeleteRepositoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRepositoryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateRemoteRequest(_message.Message):
    __slots__ = ("remote_id", "remote")
    REMOTE_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    remote_id: str
    remote: Remote
    def __init__(self, remote_id: _Optional[str] = ..., remote: _Optional[_Union[Remote, _Mapping]] = ...) -> None: ...

class CreateRemoteResponse(_message.Message):
    __slots__ = ("remote",)
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    remote: Remote
    def __init__(self, remote: _Optional[_Union[Remote, _Mapping]] = ...) -> None: ...

class GetRemoteRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetRemoteResponse(_message.Message):
    __slots__ = ("remote",)
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    remote: Remote
    def __init__(self, remote: _Optional[_Union[Remote, _Mapping]] = ...) -> None: ...

class ListRemotesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRemotesResponse(_message.Message):
    __slots__ = ("remotes", "next_page_token")
    REMOTES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    remotes: _containers.RepeatedCompositeFieldContainer[Remote]
    next_page_token: str
    def __init__(self, remotes: _Optional[_Iterable[_Union[Remote, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateRemoteRequest(_message.Message):
    __slots__ = ("remote", "update_mask")
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    remote: Remote
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, remote: _Optional[_Union[Remote, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateRemoteResponse(_message.Message):
    __slots__ = ("remote",)
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    remote: Remote
    def __init__(self, remote: _Optional[_Union[Remote, _Mapping]] = ...) -> None: ...

class DeleteRemoteRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRemoteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartSyncRequest(_message.Message):
    __slots__ = ("repository", "remote", "mirror", "request_id")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    repository: str
    remote: str
    mirror: bool
    request_id: str
    def __init__(self, repository: _Optional[str] = ..., remote: _Optional[str] = ..., mirror: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartSyncResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("repository", "remote", "mirror", "request_id")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    repository: str
    remote: str
    mirror: bool
    request_id: str
    def __init__(self, repository: _Optional[str] = ..., remote: _Optional[str] = ..., mirror: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("kind", "task", "warning")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    kind: TaskEventKind
    task: Task
    warning: str
    def __init__(self, kind: _Optional[_Union[TaskEventKind, str]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., warning: _Optional[str] = ...) -> None: ...

class CleanupOrphansRequest(_message.Message):
    __slots__ = ("orphan_protection_time", "task_retention", "request_id")
    ORPHAN_PROTECTION_TIME_FIELD_NUMBER: _ClassVar[int]
    TASK_RETENTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    orphan_protection_time: _duration_pb2.Duration
    task_retention: _duration_pb2.Duration
    request_id: str
    def __init__(self, orphan_protection_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., task_retention: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CleanupOrphansResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class RepairVersionRequest(_message.Message):
    __slots__ = ("version", "request_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    request_id: str
    def __init__(self, version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RepairVersionResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: Version
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteVersionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListContentRequest(_message.Message):
    __slots__ = ("parent", "content_type", "membership", "page_size", "page_token", "manifest_digest")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    parent: str
    content_type: str
    membership: Membership
    page_size: int
    page_token: str
    manifest_digest: str
    def __init__(self, parent: _Optional[str] = ..., content_type: _Optional[str] = ..., membership: _Optional[_Union[Membership, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., manifest_digest: _Optional[str] = ...) -> None: ...

class ListContentResponse(_message.Message):
    __slots__ = ("content", "next_page_token")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    content: _containers.RepeatedCompositeFieldContainer[Content]
    next_page_token: str
    def __init__(self, content: _Optional[_Iterable[_Union[Content, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DiffVersionsRequest(_message.Message):
    __slots__ = ("base_version", "target_version", "content_type", "page_size", "page_token")
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    base_version: str
    target_version: str
    content_type: str
    page_size: int
    page_token: str
    def __init__(self, base_version: _Optional[str] = ..., target_version: _Optional[str] = ..., content_type: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class DiffVersionsResponse(_message.Message):
    __slots__ = ("changes", "next_page_token", "summary")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ContentChange]
    next_page_token: str
    summary: ContentSummary
    def __init__(self, changes: _Optional[_Iterable[_Union[ContentChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., summary: _Optional[_Union[ContentSummary, _Mapping]] = ...) -> None: ...

class ModifyContentRequest(_message.Message):
    __slots__ = ("repository", "base_version", "add", "source_version", "remove")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    repository: str
    base_version: str
    add: _containers.RepeatedScalarFieldContainer[str]
    source_version: str
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, repository: _Optional[str] = ..., base_version: _Optional[str] = ..., add: _Optional[_Iterable[str]] = ..., source_version: _Optional[str] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class ModifyContentResponse(_message.Message):
    __slots__ = ("version", "changed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    version: Version
    changed: bool
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class TagManifestRequest(_message.Message):
    __slots__ = ("repository", "tag", "digest", "base_version")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    repository: str
    tag: str
    digest: str
    base_version: str
    def __init__(self, repository: _Optional[str] = ..., tag: _Optional[str] = ..., digest: _Optional[str] = ..., base_version: _Optional[str] = ...) -> None: ...

class TagManifestResponse(_message.Message):
    __slots__ = ("version", "changed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    version: Version
    changed: bool
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class UntagManifestRequest(_message.Message):
    __slots__ = ("repository", "tag", "base_version")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    repository: str
    tag: str
    base_version: str
    def __init__(self, repository: _Optional[str] = ..., tag: _Optional[str] = ..., base_version: _Optional[str] = ...) -> None: ...

class UntagManifestResponse(_message.Message):
    __slots__ = ("version", "changed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    version: Version
    changed: bool
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class CopyTagsRequest(_message.Message):
    __slots__ = ("source_version", "destination", "tags", "base_version")
    SOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    source_version: str
    destination: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    base_version: str
    def __init__(self, source_version: _Optional[str] = ..., destination: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., base_version: _Optional[str] = ...) -> None: ...

class CopyTagsResponse(_message.Message):
    __slots__ = ("version", "changed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    version: Version
    changed: bool
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class RollbackRepositoryRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class RollbackRepositoryResponse(_message.Message):
    __slots__ = ("version", "changed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    version: Version
    changed: bool
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class CreateDistributionRequest(_message.Message):
    __slots__ = ("distribution_id", "distribution")
    DISTRIBUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    distribution_id: str
    distribution: Distribution
    def __init__(self, distribution_id: _Optional[str] = ..., distribution: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...

class CreateDistributionResponse(_message.Message):
    __slots__ = ("distribution",)
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    distribution: Distribution
    def __init__(self, distribution: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...

class GetDistributionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDistributionResponse(_message.Message):
    __slots__ = ("distribution",)
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    distribution: Distribution
    def __init__(self, distribution: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...

class ListDistributionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDistributionsResponse(_message.Message):
    __slots__ = ("distributions", "next_page_token")
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    distributions: _containers.RepeatedCompositeFieldContainer[Distribution]
    next_page_token: str
    def __init__(self, distributions: _Optional[_Iterable[_Union[Distribution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateDistributionRequest(_message.Message):
    __slots__ = ("distribution", "update_mask")
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    distribution: Distribution
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, distribution: _Optional[_Union[Distribution, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateDistributionResponse(_message.Message):
    __slots__ = ("distribution",)
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    distribution: Distribution
    def __init__(self, distribution: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...

class DeleteDistributionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDistributionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "reserved_resource")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: TaskState
    reserved_resource: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., reserved_resource: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchTaskResponse(_message.Message):
    __slots__ = ("kind", "task", "warning")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    kind: TaskEventKind
    task: Task
    warning: str
    def __init__(self, kind: _Optional[_Union[TaskEventKind, str]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., warning: _Optional[str] = ...) -> None: ...

class CreatePrincipalRequest(_message.Message):
    __slots__ = ("principal_id", "principal")
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal_id: str
    principal: Principal
    def __init__(self, principal_id: _Optional[str] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class CreatePrincipalResponse(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class GetPrincipalRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPrincipalResponse(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class ListPrincipalsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPrincipalsResponse(_message.Message):
    __slots__ = ("principals", "next_page_token")
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    principals: _containers.RepeatedCompositeFieldContainer[Principal]
    next_page_token: str
    def __init__(self, principals: _Optional[_Iterable[_Union[Principal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdatePrincipalRequest(_message.Message):
    __slots__ = ("principal", "update_mask")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePrincipalResponse(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class DeletePrincipalRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePrincipalResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("parent", "token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    token: Token
    def __init__(self, parent: _Optional[str] = ..., token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: Token
    secret: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateGrantRequest(_message.Message):
    __slots__ = ("parent", "grant")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    grant: Grant
    def __init__(self, parent: _Optional[str] = ..., grant: _Optional[_Union[Grant, _Mapping]] = ...) -> None: ...

class CreateGrantResponse(_message.Message):
    __slots__ = ("grant",)
    GRANT_FIELD_NUMBER: _ClassVar[int]
    grant: Grant
    def __init__(self, grant: _Optional[_Union[Grant, _Mapping]] = ...) -> None: ...

class ListGrantsRequest(_message.Message):
    __slots__ = ("parent",)
    PARENT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    def __init__(self, parent: _Optional[str] = ...) -> None: ...

class ListGrantsResponse(_message.Message):
    __slots__ = ("grants",)
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    def __init__(self, grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ...) -> None: ...

class DeleteGrantRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteGrantResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
