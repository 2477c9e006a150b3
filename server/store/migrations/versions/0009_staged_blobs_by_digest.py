"""staged blobs keyed by digest; serving-generation triggers for staging and mirror mode

Revision ID: 0009
Revises: 0006

0007 first keyed `staged_blobs` by `blobs.id`; a blob staged by a push must stay staged while
garbage collection may remove (and a later push re-create) its `blobs` row, so the staging is
keyed by digest and size instead. Rows staged before this revision are carried over.

Also two more serving-generation triggers (see 0008): a blob staged in a repository becomes
visible there, and a repository turning into a mirror (or back) changes what a push may do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.schema

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# (trigger name suffix, event, table), as in 0008.
_EVENTS = (
    ("staged_blobs_insert", "INSERT", "staged_blobs"),
    ("repositories_mirror", "UPDATE OF is_mirror", "repositories"),
)
_BUMP = "UPDATE serving_generation SET value = value + 1 WHERE id = 1"


def _create_staged(name: str) -> None:
    op.create_table(
        name,
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("create_time", server.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_staged_blobs_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name=op.f("pk_staged_blobs")),
    )


def upgrade() -> None:
    op.drop_index(op.f("ix_staged_blobs_create_time"), table_name="staged_blobs")
    op.rename_table("staged_blobs", "staged_blobs_0007")
    if op.get_bind().dialect.name == "postgresql":
        # Constraint names live in the schema namespace: free them for the new table.
        op.execute("ALTER TABLE staged_blobs_0007 DROP CONSTRAINT pk_staged_blobs")
        op.execute(
            "ALTER TABLE staged_blobs_0007 "
            "DROP CONSTRAINT fk_staged_blobs_repository_id_repositories"
        )
        op.execute("ALTER TABLE staged_blobs_0007 DROP CONSTRAINT fk_staged_blobs_blob_id_blobs")
    _create_staged("staged_blobs")
    op.execute(
        "INSERT INTO staged_blobs (repository_id, digest, size, create_time) "
        "SELECT s.repository_id, b.digest, b.size, s.create_time "
        "FROM staged_blobs_0007 s JOIN blobs b ON b.id = s.blob_id"
    )
    op.drop_table("staged_blobs_0007")
    op.create_index(
        op.f("ix_staged_blobs_create_time"), "staged_blobs", ["create_time"], unique=False
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for suffix, event, table in _EVENTS:
        if postgres:  # the function comes from 0008
            op.execute(
                f"CREATE TRIGGER serving_generation_{suffix} AFTER {event} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_serving_generation()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER serving_generation_{suffix} AFTER {event} ON {table} "
                f"FOR EACH ROW BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for suffix, _event, table in _EVENTS:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS serving_generation_{suffix} ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS serving_generation_{suffix}")
    # Staged blobs are transient (they expire with the upload lifetime): not carried back.
    op.drop_index(op.f("ix_staged_blobs_create_time"), table_name="staged_blobs")
    op.drop_table("staged_blobs")
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
