"""Alembic environment: the database URL comes from the application's settings unless the
caller set ``sqlalchemy.url`` (tests, ``ehc db upgrade --url``)."""

from alembic import context
from sqlmodel import SQLModel

import store.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from store.db import make_engine
from config.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().db_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # SQLite cannot alter a table in place: batch migrations rebuild it, which foreign keys
    # pointing at it would block, so they are off while migrating (PostgreSQL: unaffected).
    engine = make_engine(url, foreign_keys=False)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=SQLModel.metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
