"""content sources: per-manifest blob descriptors, the remote of each content, deleted remotes

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-01 23:10:00

- manifest_blobs.size / media_type: the descriptor as each manifest declares it (serving reads
  these through the repository's own manifests, not the global blobs row). Existing rows are
  filled from blobs, which is what was served before.
- repository_content.remote_id: the remote a sync brought the content from; existing rows
  take their repository's current remote, which is what pull-through used before.
- remotes.deleted: a remote deleted while content still names it is kept, hidden.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("manifest_blobs", sa.Column("size", sa.BigInteger(), nullable=True))
    op.add_column("manifest_blobs", sa.Column("media_type", sa.String(length=255), nullable=True))
    op.execute(
        "UPDATE manifest_blobs SET "
        "size = (SELECT blobs.size FROM blobs WHERE blobs.id = manifest_blobs.blob_id), "
        "media_type = (SELECT blobs.media_type FROM blobs WHERE blobs.id = manifest_blobs.blob_id)"
    )
    op.add_column("repository_content", sa.Column("remote_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE repository_content SET remote_id = (SELECT repositories.remote_id FROM "
        "repositories WHERE repositories.id = repository_content.repository_id)"
    )
    op.create_index(
        "ix_repository_content_remote", "repository_content", ["remote_id"], unique=False
    )
    op.add_column(
        "remotes",
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("remotes", "deleted")
    op.drop_index("ix_repository_content_remote", table_name="repository_content")
    op.drop_column("repository_content", "remote_id")
    op.drop_column("manifest_blobs", "media_type")
    op.drop_column("manifest_blobs", "size")
