"""housekeeping: last_used on content rows, indexes garbage collection needs, processes

Revision ID: 0004
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.schema

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_TABLES = ("blobs", "manifests", "tags", "signatures")


def upgrade() -> None:
    for table in CONTENT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("last_used", server.store.schema.UTCDateTime(), nullable=True)
            )
    op.create_index(
        "ix_repository_content_unit", "repository_content", ["content_type", "content_id"]
    )
    op.create_index(op.f("ix_manifest_blobs_blob_id"), "manifest_blobs", ["blob_id"])
    op.create_index(op.f("ix_manifest_children_child_id"), "manifest_children", ["child_id"])
    op.create_index(op.f("ix_tags_manifest_id"), "tags", ["manifest_id"])
    op.create_index(op.f("ix_signatures_manifest_id"), "signatures", ["manifest_id"])
    op.create_table(
        "server_processes",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("start_time", server.store.schema.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_time", server.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_server_processes")),
    )


def downgrade() -> None:
    op.drop_table("server_processes")
    op.drop_index(op.f("ix_signatures_manifest_id"), table_name="signatures")
    op.drop_index(op.f("ix_tags_manifest_id"), table_name="tags")
    op.drop_index(op.f("ix_manifest_children_child_id"), table_name="manifest_children")
    op.drop_index(op.f("ix_manifest_blobs_blob_id"), table_name="manifest_blobs")
    op.drop_index("ix_repository_content_unit", table_name="repository_content")
    for table in CONTENT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("last_used")
