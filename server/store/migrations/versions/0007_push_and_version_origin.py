"""push: version origin, blob upload sessions, blobs staged in a repository

Revision ID: 0007
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.schema

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        # Every version before this revision came from a sync, except each version 0.
        batch.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="sync")
        )
        batch.add_column(
            sa.Column("principal", sa.String(length=255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("detail", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE versions SET source = 'created' WHERE number = 0")
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("create_time", server.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("update_time", server.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_uploads_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("uid", name=op.f("uq_uploads_uid")),
    )
    op.create_index(op.f("ix_uploads_update_time"), "uploads", ["update_time"], unique=False)
    op.create_table(
        "staged_blobs",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.Integer(), nullable=False),
        sa.Column("create_time", server.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_id"],
            ["blobs.id"],
            name=op.f("fk_staged_blobs_blob_id_blobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_staged_blobs_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "blob_id", name=op.f("pk_staged_blobs")),
    )
    op.create_index(
        op.f("ix_staged_blobs_create_time"), "staged_blobs", ["create_time"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_staged_blobs_create_time"), table_name="staged_blobs")
    op.drop_table("staged_blobs")
    op.drop_index(op.f("ix_uploads_update_time"), table_name="uploads")
    op.drop_table("uploads")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("detail")
        batch.drop_column("principal")
        batch.drop_column("source")
