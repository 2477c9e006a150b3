"""serving generation: one counter every change to what distributions serve bumps

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-01 23:10:00

The registry endpoint keeps what a published version serves in memory (server/registry/
cache.py) and checks this single row before answering: any change to what a base path
resolves to (a distribution created, re-pointed or deleted; a repository's latest version or
remote changed, or the repository deleted; a version deleted) bumps it in the same
transaction, through triggers, so no writer (sync, push, a content operation, another
process) can forget to. Triggers are not part of the ORM metadata, hence raw SQL here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (trigger name suffix, event, table)
_EVENTS = (
    ("distributions_insert", "INSERT", "distributions"),
    ("distributions_update", "UPDATE", "distributions"),
    ("distributions_delete", "DELETE", "distributions"),
    ("repositories_update", "UPDATE OF latest_version, remote_id", "repositories"),
    ("repositories_delete", "DELETE", "repositories"),
    ("versions_delete", "DELETE", "versions"),
)
_BUMP = "UPDATE serving_generation SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "serving_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_generation")),
    )
    op.execute("INSERT INTO serving_generation (id, value) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_serving_generation() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for suffix, event, table in _EVENTS:
            # Per statement: a bulk delete bumps once.
            op.execute(
                f"CREATE TRIGGER serving_generation_{suffix} AFTER {event} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_serving_generation()"
            )
    else:
        for suffix, event, table in _EVENTS:
            # SQLite has row triggers only.
            op.execute(
                f"CREATE TRIGGER serving_generation_{suffix} AFTER {event} ON {table} "
                f"FOR EACH ROW BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    for suffix, _event, table in _EVENTS:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS serving_generation_{suffix} ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS serving_generation_{suffix}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bump_serving_generation()")
    op.drop_table("serving_generation")
