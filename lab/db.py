"""The journal's database behind one small interface: SQLite (embedded, the default) or PostgreSQL (a team's replicas).

A journal is named by a location: a file path or ``sqlite:///path`` (one machine,
a file in the data directory), or ``postgresql://user:password@host:port/db``
(several replicas sharing one server). ``connect(location)`` opens either and
returns a ``Database``; the store writes one set of statements and migrations.

The statements are SQLite's, written portably; ``translate`` turns them into
PostgreSQL's at this one place, so nobody writes a statement twice:

- ``?`` placeholders become ``%s`` (and a literal ``%`` is doubled);
- ``rowid`` becomes ``lab_rowid``, an identity column every table gets on
  PostgreSQL (``CREATE TABLE``), so "in the order written" reads the same.
  It orders rows; it is not a value to read (rows never carry it);
- two-argument ``MAX(a, b)`` / ``MIN(a, b)`` become ``GREATEST`` / ``LEAST``;
- ``LIKE`` becomes ``ILIKE`` (SQLite's LIKE ignores case);
- the type ``REAL`` becomes ``DOUBLE PRECISION`` (PostgreSQL's REAL has 24
  bits: a Unix time would lose minutes) and ``INTEGER`` becomes ``BIGINT``
  (seeds run to 2^32).

What differs in kind lives here, each in its database's own terms:

- the journal-wide write lock of ``immediate()``: SQLite's ``BEGIN IMMEDIATE``;
  on PostgreSQL a transaction that first takes ``pg_advisory_xact_lock`` on a
  key of this journal (its schema), so every replica's reads-then-writes (caps,
  leases, migrations) run one at a time, each seeing all the others committed;
- prompt search: an FTS5 table on SQLite, a GIN index over ``to_tsvector`` on
  PostgreSQL (``Database.prompt_search``);
- opening: WAL on SQLite; on PostgreSQL a lost connection is opened again on the
  next call (waiting up to ``RECONNECT_S``), never by re-sending a statement that
  may have run.

Driver errors become ``StoreError`` where they enter, naming the journal by its
``location``: a path, or the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from lab.errors import StoreError, StoreUnavailable

SCHEMES = ("sqlite", "postgresql", "postgres")
ROWID = "lab_rowid"
CONNECT_TIMEOUT_S = 5
RECONNECT_S = 15.0
LOCK_TIMEOUT_S = 10  # like SQLite's busy_timeout: a write waits this long for the journal's lock
# On PostgreSQL the prompt index and the search use one expression, so the index serves the search.
PG_PROMPT_VECTOR = "to_tsvector('simple', COALESCE({column}, ''))"


# ---------------------------------------------------------------- locations


@dataclass(frozen=True)
class Location:
    """Where a journal lives. ``url`` may hold a password: show ``display`` instead."""

    dialect: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None

    @property
    def display(self) -> str:
        return str(self.path) if self.path is not None else redact_url(self.url)

    @property
    def host(self) -> str:
        """The server's host and port (PostgreSQL), for a message about reaching it."""
        parts = urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or "localhost (unix socket)"
        return f"{host}:{port}" if port else host


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable database URL)"
    if parts.password is None:
        netloc = parts.netloc
    else:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{user}:***@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_location(value: str | Path) -> Location:
    """A path or ``sqlite:///path`` (SQLite), or ``postgresql://…`` / ``postgres://…``; ValueError otherwise."""
    if isinstance(value, Path):
        return Location("sqlite", f"sqlite:///{value}", value)
    text = str(value).strip()
    if "://" not in text:
        if not text:
            raise ValueError("a database URL or journal path is empty")
        return Location("sqlite", f"sqlite:///{text}", Path(text))
    scheme = text.partition("://")[0].lower()
    if scheme == "sqlite":
        # sqlite:///relative/file or sqlite:////absolute/file, as SQLAlchemy and MLflow write them.
        rest = text.partition("://")[2]
        path = unquote(rest[1:] if rest.startswith("/") else rest)
        if not path:
            raise ValueError("sqlite:/// names no file (write sqlite:////absolute/path/journal.sqlite3)")
        return Location("sqlite", text, Path(path))
    if scheme in ("postgresql", "postgres"):
        if not urlsplit(text).path.strip("/"):
            raise ValueError(f"{redact_url(text)} names no database (add /DBNAME after the host)")
        return Location("postgresql", text)
    raise ValueError(f"unknown database URL scheme {scheme + '://'!r} in {redact_url(text)}; "
                     "use sqlite:///path/to/journal.sqlite3 or postgresql://user:password@host:port/dbname")


# ---------------------------------------------------------------- translating SQLite's SQL to PostgreSQL's

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?[A-Za-z_][A-Za-z0-9_]*\s*\(", re.IGNORECASE)
_DDL_TYPES = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT"}


def _scan(sql: str) -> Iterator[tuple[str, str]]:
    """(kind, text) pieces: "quoted" (a '…' literal or "…" identifier) and "code" (anything else)."""
    start, i, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            if i > start:
                yield "code", sql[start:i]
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # a doubled quote inside
                        j += 2
                        continue
                    break
                j += 1
            yield "quoted", sql[i:j + 1]
            start = i = j + 1
        else:
            i += 1
    if start < n:
        yield "code", sql[start:]


def _two_argument(code: str, open_at: int) -> tuple[int, bool]:
    """Index of the ``)`` closing the call opened at ``open_at``, and whether it has exactly two arguments."""
    depth, commas = 0, 0
    for i in range(open_at, len(code)):
        if code[i] == "(":
            depth += 1
        elif code[i] == ")":
            depth -= 1
            if depth == 0:
                return i, commas == 1
        elif code[i] == "," and depth == 1:
            commas += 1
    return -1, False


def translate(sql: str) -> str:
    """SQLite's SQL (as the store writes it) in PostgreSQL's terms; see the module docstring."""
    text = "".join(_translate_code(piece) if kind == "code" else piece.replace("%", "%%")
                   for kind, piece in _scan(sql))
    # Quoted text was kept whole above; MAX/MIN calls may span literals, so they are done on the joined text.
    text = _greatest_least(text)
    if _CREATE_TABLE.match(text):
        head = _CREATE_TABLE.match(text)
        text = f"{text[:head.end()]}{ROWID} BIGINT GENERATED BY DEFAULT AS IDENTITY, {text[head.end():]}"
    return text


def _translate_code(code: str) -> str:
    code = code.replace("%", "%%").replace("?", "%s")

    def word(match: re.Match) -> str:
        name = match.group(0)
        upper = name.upper()
        if name.lower() == "rowid":
            return ROWID
        if upper == "LIKE":
            return "ILIKE"
        if upper in _DDL_TYPES:
            return _DDL_TYPES[upper]
        return name

    return _WORD.sub(word, code)


def _greatest_least(text: str) -> str:
    out, i = [], 0
    for match in re.finditer(r"\b(MAX|MIN)\s*\(", text, re.IGNORECASE):
        if match.start() < i:
            continue
        close, two = _two_argument(text, match.end() - 1)
        if close < 0 or not two:
            continue
        name = "GREATEST" if match.group(1).upper() == "MAX" else "LEAST"
        inner = _greatest_least(text[match.end():close])
        out.append(text[i:match.start()] + f"{name}({inner})")
        i = close + 1
    out.append(text[i:])
    return "".join(out)


# ---------------------------------------------------------------- rows


class Row(Sequence):
    """One result row, by position or by column name (like ``sqlite3.Row``; ``dict(row)`` works)."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: tuple, index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


def _pg_row_factory(cursor: Any):
    names = [column.name for column in (cursor.description or [])]
    keep = [i for i, name in enumerate(names) if name != ROWID]
    index = {names[i]: position for position, i in enumerate(keep)}

    def make(values: Sequence[Any]) -> Row:
        return Row(tuple(values[i] for i in keep), index)

    return make


# ---------------------------------------------------------------- the databases


class Transaction:
    """What ``Database.immediate()`` yields: ``execute`` returns a cursor (``fetchone``, ``fetchall``, ``rowcount``)."""

    def __init__(self, database: "Database", connection: Any) -> None:
        self.database = database
        self.dialect = database.dialect
        self._connection = connection

    def execute(self, sql: str, args: Sequence[Any] | tuple = ()) -> Any:
        return self.database._run(self._connection, sql, args)


class Database:
    """One connection to a journal, shared by this process's threads (one statement at a time)."""

    dialect = ""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._lock = threading.RLock()

    @property
    def path(self) -> Path | None:
        return self.location.path

    @property
    def display(self) -> str:
        return self.location.display

    def error(self, exc: BaseException) -> StoreError:
        return StoreError(f"journal {self.display}: {exc}")

    def execute(self, sql: str, args: Sequence[Any] | tuple = ()) -> list[Any]:
        """One statement on its own (committed at once); its rows."""
        raise NotImplementedError

    @contextmanager
    def immediate(self) -> Iterator[Transaction]:
        """One write transaction that every process on this journal serialises on."""
        raise NotImplementedError
        yield  # pragma: no cover

    def prompt_search(self, words: str, alias: str = "t") -> tuple[str, str, list[Any]] | None:
        """(join, condition, arguments) matching rows of ``tasks`` (as ``alias``) whose prompt has all ``words``."""
        raise NotImplementedError

    def create_prompt_search(self, db: Transaction) -> None:
        """The prompt index (migration 9), in this database's terms."""
        raise NotImplementedError

    def tables(self) -> list[str]:
        """The journal's own tables (not the search index's), for ``journal copy``."""
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, connection: Any, sql: str, args: Sequence[Any] | tuple) -> Any:
        raise NotImplementedError


_PROMPT_WORD = re.compile(r"[^\W_]+")


def prompt_words(text: str) -> list[str] | None:
    """The words a prompt search looks for: runs of letters and digits, lower-cased.

    None for blank text (no filter); an empty list for text with no word in it (nothing matches).
    """
    if not text.split():
        return None
    return [word.lower() for word in _PROMPT_WORD.findall(text)]


def _switch_to_wal(db: sqlite3.Connection, wait_s: float) -> None:
    """Put the journal in WAL mode, waiting up to ``wait_s`` for other connections doing the same.

    While several connections open a new file at once, the switch answers "database is locked"
    at once, without the busy handler waiting (measured: 0.00 s with busy_timeout at 10 s), so
    it is retried here for a bounded time.
    """
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class SQLiteDatabase(Database):
    """The embedded journal: a file, WAL mode so the CLI beside the app reads and writes it too."""

    dialect = "sqlite"

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        path = location.path
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout=10000")
            _switch_to_wal(self._db, wait_s=10.0)
            self._db.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the journal {path}: {exc}") from exc

    def _run(self, connection: Any, sql: str, args: Sequence[Any] | tuple) -> Any:
        try:
            return connection.execute(sql, args)
        except sqlite3.Error as exc:
            raise self.error(exc) from exc

    def execute(self, sql: str, args: Sequence[Any] | tuple = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    @contextmanager
    def immediate(self) -> Iterator[Transaction]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
            try:
                yield Transaction(self, self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    def prompt_search(self, words: str, alias: str = "t") -> tuple[str, str, list[Any]] | None:
        terms = prompt_words(words)
        if terms is None:
            return None
        if not terms:
            return "", "1 = 0", []
        # Each word quoted (no FTS syntax) and a prefix ("word"*): all must match, any order.
        query = " ".join('"' + term + '"*' for term in terms)
        return f"JOIN tasks_fts ON tasks_fts.rowid = {alias}.rowid", "tasks_fts MATCH ?", [query]

    def create_prompt_search(self, db: Transaction) -> None:
        # An FTS5 index kept by triggers.
        db.execute("CREATE VIRTUAL TABLE tasks_fts USING fts5(prompt, content='tasks', content_rowid='rowid')")
        db.execute("CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN "
                   "INSERT INTO tasks_fts (rowid, prompt) VALUES (new.rowid, new.prompt); END")
        db.execute("CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN "
                   "INSERT INTO tasks_fts (tasks_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); END")
        db.execute("CREATE TRIGGER tasks_fts_update AFTER UPDATE OF prompt ON tasks BEGIN "
                   "INSERT INTO tasks_fts (tasks_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); "
                   "INSERT INTO tasks_fts (rowid, prompt) VALUES (new.rowid, new.prompt); END")
        db.execute("INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild')")

    def tables(self) -> list[str]:
        rows = self.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY rowid")
        virtual = {row[0] for row in self.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'")}
        # An FTS5 table's shadow tables are named after it (tasks_fts_data, …): the index, not journal data.
        return [row[0] for row in rows if not any(row[0].startswith(name + "_") for name in virtual)]

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.execute(f'PRAGMA table_info("{table}")')]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresDatabase(Database):
    """A journal on a PostgreSQL server, shared by every replica that names it."""

    dialect = "postgresql"

    def __init__(self, location: Location, *, reconnect_s: float = RECONNECT_S) -> None:
        super().__init__(location)
        try:
            import psycopg  # noqa: F401 - only a PostgreSQL journal needs the driver
        except ImportError as exc:
            raise StoreError("a postgresql:// journal needs the psycopg package: pip install 'psycopg[binary]'") from exc
        self.reconnect_s = reconnect_s
        self._conn: Any = None
        self._lock_key = 0
        with self._lock:
            self._connection(wait_s=0.0)

    # ------------------------------------------------------------ the connection

    def _open(self) -> Any:
        import psycopg
        from psycopg.types.numeric import FloatLoader

        conn = psycopg.connect(self.location.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="veo-prompt-lab", row_factory=_pg_row_factory)
        # SQLite hands sums back as floats: so does this (numeric sums would come back as Decimal).
        conn.adapters.register_loader("numeric", FloatLoader)
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            conn.close()
            raise StoreError(f"journal {self.display}: no schema to write in (check the URL's search_path option)")
        # One lock per journal: a database may hold several labs, one per schema.
        digest = hashlib.blake2b(f"veo-prompt-lab journal {schema}".encode(), digest_size=8).digest()
        self._lock_key = int.from_bytes(digest, "big", signed=True)
        return conn

    def _connection(self, wait_s: float | None = None) -> Any:
        """The open connection, opening it again if it was lost (trying for up to ``wait_s`` seconds)."""
        import psycopg

        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        deadline = time.monotonic() + (self.reconnect_s if wait_s is None else wait_s)
        delay = 0.25
        while True:
            try:
                self._conn = self._open()
                return self._conn
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(f"cannot reach the journal database at {self.location.host} "
                                     f"({self.display}): {_first_line(exc)}") from None
            except psycopg.Error as exc:
                raise StoreError(f"cannot open the journal {self.display}: {_first_line(exc)}") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _run(self, connection: Any, sql: str, args: Sequence[Any] | tuple) -> Any:
        import psycopg

        try:
            return connection.execute(translate(sql), tuple(args))
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def execute(self, sql: str, args: Sequence[Any] | tuple = ()) -> list[Any]:
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                cursor = conn.execute(translate(sql), tuple(args))
                return cursor.fetchall() if cursor.description else []
            except psycopg.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def immediate(self) -> Iterator[Transaction]:
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    yield Transaction(self, conn)
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def _error(self, exc: BaseException) -> StoreError:
        import psycopg

        # A lost connection, a server shutting down, a lock not granted in time: the same write may work soon.
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailable(f"journal {self.display} ({self.location.host}): {_first_line(exc)}")
        return self.error(_first_line(exc))

    # ------------------------------------------------------------ dialect

    def prompt_search(self, words: str, alias: str = "t") -> tuple[str, str, list[Any]] | None:
        terms = prompt_words(words)
        if terms is None:
            return None
        if not terms:
            return "", "1 = 0", []
        vector = PG_PROMPT_VECTOR.format(column=f"{alias}.prompt")
        # Letters and digits only, so each term is a plain lexeme; ":*" makes it a prefix, "&" wants all.
        return "", f"{vector} @@ to_tsquery('simple', ?)", [" & ".join(f"{term}:*" for term in terms)]

    def create_prompt_search(self, db: Transaction) -> None:
        # A GIN index over the same expression the search uses; PostgreSQL keeps it current itself.
        db.execute(f"CREATE INDEX tasks_prompt_search ON tasks USING GIN ({PG_PROMPT_VECTOR.format(column='prompt')})")

    def tables(self) -> list[str]:
        rows = self.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                            "AND table_type = 'BASE TABLE' ORDER BY table_name")
        return [row[0] for row in rows]

    def columns(self, table: str) -> list[str]:
        rows = self.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                            "AND table_name = ? ORDER BY ordinal_position", (table,))
        return [row[0] for row in rows if row[0] != ROWID]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _first_line(exc: BaseException) -> str:
    """A driver's message without its multi-line detail (which may echo a statement's values)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def connect(location: str | Path | Location) -> Database:
    """Open the journal's database (created if new for SQLite; the PostgreSQL database must exist)."""
    if not isinstance(location, Location):
        try:
            location = parse_location(location)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
    if location.dialect == "postgresql":
        return PostgresDatabase(location)
    return SQLiteDatabase(location)
