"""task queue: procrastinate's schema (mapping jobs, periodic tasks); the job_leases table goes

With it, a trigger of ours: procrastinate wakes its workers when a job is inserted, not when a job
holding a lock ends, so the next job of that lock (mapping jobs share one) would wait for the next
insert or poll (5 s). When a locked job leaves "doing" the trigger sends the same wake-up.

The schema is the one shipped with the pinned procrastinate (pyproject.toml). A later procrastinate
that changes it ships its own migration scripts (procrastinate/sql/migrations): a new revision here
applies those, as this one applies the schema.

Revision ID: 0014_task_queue
Revises: 0013_issues
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision: str = "0014_task_queue"
down_revision: str | None = "0013_issues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_script(sql: str) -> None:
    """Run a multi-statement script (functions with $$ bodies) on the migration's own connection."""
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    await_only(driver.execute(sql))  # asyncpg: the simple query protocol takes a whole script


WAKE_WORKERS = """
CREATE FUNCTION supportlens_wake_workers_v1() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT := json_build_object('type', 'job_inserted', 'job_id', OLD.id)::text;
BEGIN
    PERFORM pg_notify('procrastinate_queue_v1#' || OLD.queue_name, payload);
    PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    RETURN NULL;
END;
$$;
CREATE TRIGGER supportlens_locked_job_deleted_v1
    AFTER DELETE ON procrastinate_jobs
    FOR EACH ROW WHEN (OLD.lock IS NOT NULL AND OLD.status = 'doing')
    EXECUTE FUNCTION supportlens_wake_workers_v1();
CREATE TRIGGER supportlens_locked_job_ended_v1
    AFTER UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW WHEN (OLD.lock IS NOT NULL AND OLD.status = 'doing' AND NEW.status <> 'doing')
    EXECUTE FUNCTION supportlens_wake_workers_v1();
"""


def upgrade() -> None:
    _run_script(SchemaManager.get_schema())
    _run_script(WAKE_WORKERS)
    op.drop_table("job_leases")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS supportlens_wake_workers_v1 CASCADE")
    schema = SchemaManager.get_schema()
    for table in reversed(re.findall(r"CREATE TABLE (\w+)", schema)):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in sorted(set(re.findall(r"CREATE FUNCTION (\w+)\(", schema))):
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for type_name in re.findall(r"CREATE TYPE (\w+)", schema):
        op.execute(f"DROP TYPE IF EXISTS {type_name} CASCADE")
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_holder", sa.String(length=100), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
