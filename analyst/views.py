"""DuckDB front door for analysts: an output root's tables and derived views.

``connect(output_root)`` returns an in-memory DuckDB connection with the views
of ``analyst/sql/views.sql``: ``articles``, ``duplicates``, ``dead_letters``,
``feed_status``, ``runs``, ``article_topics``, ``daily_topics``,
``cluster_members``, ``clusters`` and ``feed_health``.

``views.sql`` names its inputs as ``{{ articles }}``-style placeholders;
:func:`render_views` replaces each with a typed relation: the table's Parquet
files read with Hive partitioning, every column cast to its type in
``schemas/article.py`` (columns no file has yet become typed NULLs), or, when
the folder has no Parquet file at all, ``SELECT CAST(NULL AS <type>) AS <col>
... WHERE false``. Column names and types therefore always come from the
schema, whatever is (or is not yet) on disk.

Remote roots (``gs://``, ``s3://``) go through DuckDB's ``httpfs`` extension,
which must already be installed (``INSTALL httpfs`` needs extensions.duckdb.org)
and given credentials (for GCS: ``CREATE SECRET (TYPE gcs, KEY_ID ..., SECRET
...)`` with HMAC keys). Nothing here downloads anything.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import posixpath
import re
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from schemas import ARTICLES, DEAD_LETTERS, DUPLICATES, FEED_STATUS, Table

# Placeholder name in views.sql -> table whose Parquet files it reads.
TABLE_PLACEHOLDERS: dict[str, Table] = {
    "articles": ARTICLES,
    "duplicates": DUPLICATES,
    "dead_letters": DEAD_LETTERS,
    "feed_status": FEED_STATUS,
}

MANIFEST_DIR = "_runs"  # transforms.commit.MANIFEST_DIR (not imported: that would import Beam)

# Top-level keys of a run manifest (transforms/commit.py) that the ``runs`` view reads, with
# their DuckDB types. Manifests are JSON, not a schemas/ table, so their columns live here.
MANIFEST_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "started_at": "TIMESTAMP WITH TIME ZONE",
    "finished_at": "TIMESTAMP WITH TIME ZONE",
    "runner": "VARCHAR",
    "profile": "VARCHAR",
    "inputs": "VARCHAR[]",
    "feeds_file": "VARCHAR",
    "output": "VARCHAR",
    "counters": "JSON",
    "files": "JSON",
    "versions": "JSON",
    "parent_run_id": "VARCHAR",
    "chunks": "VARCHAR[]",
    "kind": "VARCHAR",
}

# Every view views.sql creates, in creation order (tests and `shell` list them).
VIEWS = ("articles", "duplicates", "dead_letters", "feed_status", "runs", "article_topics",
         "daily_topics", "cluster_members", "clusters", "feed_health")

REMOTE_SCHEMES = ("gs://", "s3://", "gcs://", "http://", "https://")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class AnalystError(Exception):
    """The output root cannot be opened (remote root without httpfs, unreadable files)."""


def views_template() -> str:
    """The text of ``views.sql`` as shipped in the package."""
    return importlib.resources.files("analyst.sql").joinpath("views.sql").read_text(encoding="utf-8")


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def is_remote(root: str) -> bool:
    return root.startswith(REMOTE_SCHEMES)


def join(root: str, *parts: str) -> str:
    if "://" in root:
        return posixpath.join(root.rstrip("/"), *parts)
    return os.path.join(root, *parts)


def table_glob(root: str, table: Table) -> str:
    return join(root, table.name, "**", "*.parquet")


def manifest_glob(root: str) -> str:
    return join(root, MANIFEST_DIR, "*.json")


@functools.cache
def _duckdb_types(schema: pa.Schema) -> tuple[tuple[str, str], ...]:
    rel = duckdb.connect().from_arrow(schema.empty_table())
    return tuple((name, str(type_)) for name, type_ in zip(rel.columns, rel.types))


def duckdb_columns(table: Table) -> dict[str, str]:
    """Column name -> DuckDB type, in schema order, as DuckDB maps the table's Arrow schema."""
    return dict(_duckdb_types(table.schema))


def empty_relation(columns: Mapping[str, str]) -> str:
    """A parenthesized relation with ``columns`` (name -> DuckDB type) and no rows."""
    items = ", ".join(f"CAST(NULL AS {type_}) AS {identifier(name)}" for name, type_ in columns.items())
    return f"(SELECT {items} WHERE false)"


def has_files(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
    try:
        return con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()[0] > 0
    except duckdb.Error as err:
        raise AnalystError(f"cannot list {pattern}: {err}") from err


def _select_list(expected: Mapping[str, str], present: Mapping[str, str]) -> str:
    items = []
    for name, type_ in expected.items():
        col = identifier(name)
        if name not in present:
            items.append(f"CAST(NULL AS {type_}) AS {col}")
        elif present[name] != type_:
            items.append(f"CAST({col} AS {type_}) AS {col}")
        else:
            items.append(col)  # plain reference keeps partition pruning and filter pushdown
    return ", ".join(items)


def _describe(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    try:
        rel = con.sql(f"SELECT * FROM {source}")
    except duckdb.Error as err:
        raise AnalystError(f"cannot read {source}: {err}") from err
    return {name: str(type_) for name, type_ in zip(rel.columns, rel.types)}


def table_relation(con: duckdb.DuckDBPyConnection, root: str, table: Table) -> str:
    """Typed relation over ``table``'s Parquet files under ``root``, or an empty one."""
    expected = duckdb_columns(table)
    pattern = table_glob(root, table)
    if not has_files(con, pattern):
        return empty_relation(expected)
    if table is ARTICLES and has_files(con, join(root, table.name, "published_date=*", "*", "*.parquet")):
        raise AnalystError(
            f"{root} holds articles in layout 1 (published_date=.../language=... folders); this version reads "
            f"layout 2 (published_month=YYYY-MM): run `python -m pipeline migrate --output {root}` once "
            f"(docs/querying.md)")
    hive_types = ", ".join(f"{literal(p)}: {literal(expected[p])}" for p in table.partitions)
    source = (f"read_parquet({literal(pattern)}, hive_partitioning = true, union_by_name = true, "
              f"hive_types = {{{hive_types}}})")
    return f"(SELECT {_select_list(expected, _describe(con, source))} FROM {source})"


def manifest_relation(con: duckdb.DuckDBPyConnection, root: str) -> str:
    """Relation over the run manifests ``<root>/_runs/*.json`` (columns: MANIFEST_COLUMNS)."""
    pattern = manifest_glob(root)
    if not has_files(con, pattern):
        return empty_relation(MANIFEST_COLUMNS)
    columns = ", ".join(f"{literal(name)}: {literal(type_)}" for name, type_ in MANIFEST_COLUMNS.items())
    return f"(SELECT * FROM read_json({literal(pattern)}, format = 'auto', columns = {{{columns}}}))"


def render(template: str, relations: Mapping[str, str]) -> str:
    """Replace every ``{{ name }}`` of ``template``; an unknown name is an error."""
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in relations:
            raise AnalystError(f"views.sql uses {{{{ {name} }}}}, which is not one of {sorted(relations)}")
        return relations[name]
    return _PLACEHOLDER.sub(sub, template)


def prepare(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Session settings: UTC timestamps; httpfs for remote roots (never installed from here)."""
    con.execute("SET TimeZone = 'UTC'")
    if is_remote(root):
        try:
            con.execute("LOAD httpfs")
        except duckdb.Error as err:
            raise AnalystError(
                f"{root} is remote: DuckDB needs its httpfs extension (run `INSTALL httpfs` once where "
                f"extensions.duckdb.org is reachable, then CREATE SECRET with HMAC keys): {err}") from err


def render_views(con: duckdb.DuckDBPyConnection, root: str) -> str:
    """``views.sql`` rendered for ``root``, looking at which tables have files through ``con``."""
    relations = {name: table_relation(con, root, table) for name, table in TABLE_PLACEHOLDERS.items()}
    relations["manifests"] = manifest_relation(con, root)
    return render(views_template(), relations)


def session_sql(root: str) -> str:
    """A self-contained SQL script (settings + views) for ``root``, e.g. a duckdb CLI init file."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        prepare(con, root)
        lines = ["SET TimeZone = 'UTC';"]
        if is_remote(root):
            lines.append("LOAD httpfs;")
        return "\n".join(lines) + "\n\n" + render_views(con, root)
    finally:
        con.close()


def interrupted_commits(root: str) -> bool:
    """True when a run left staged files or a commit it did not finish publishing (local roots;
    remote roots are always checked by the commit protocol's recovery)."""
    if is_remote(root):
        return True
    staging = os.path.join(root, "_staging")
    if os.path.isdir(staging) and os.listdir(staging):
        return True
    commits = os.path.join(root, "_commits")
    if not os.path.isdir(commits):
        return False
    published = set(os.listdir(os.path.join(root, MANIFEST_DIR))) if os.path.isdir(os.path.join(root, MANIFEST_DIR)) else set()
    return any(name.endswith(".json") and name not in published for name in os.listdir(commits))


def finish_interrupted_commits(root: str) -> None:
    """Readers first finish (or undo) a run that stopped mid-commit, when no writer is active
    (transforms/commit.py); either way they only ever see committed runs' files."""
    if interrupted_commits(root):
        from transforms.commit import recover_if_idle  # imports Beam: only when there is work

        recover_if_idle(root)


def connect(root: str, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view of ``views.sql`` over the output ``root``."""
    finish_interrupted_commits(root)
    con = duckdb.connect(database, config={"autoinstall_known_extensions": False})
    try:
        prepare(con, root)
        con.execute(render_views(con, root))
    except duckdb.Error as err:
        con.close()
        raise AnalystError(f"cannot create the views over {root}: {err}") from err
    except AnalystError:
        con.close()
        raise
    return con
