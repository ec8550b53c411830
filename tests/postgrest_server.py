"""A small PostgREST-compatible HTTP server in front of a real PostgreSQL, for the store tests.

It implements what supabase-py sends for our calls (insert; upsert with on_conflict and
resolution=merge-duplicates / ignore-duplicates; select with eq/neq/gt/gte/lt/lte/is, order,
limit, offset, count=exact; update with filters) the way PostgREST does: each request is one
transaction that runs `SET LOCAL ROLE` to the role of its key, so Row Level Security is real,
rows go through json_populate_recordset, and answers are built by PostgreSQL's json_agg.
Errors are answered like PostgREST: JSON {code, message, details, hint} with 409 for 23505 /
23503, 401 (anon) or 403 for 42501, 404 for a missing table, 400 for other data errors, 401
for a bad key (the gateway's "Invalid API key"), 503 PGRST001 when the database is gone and
404 PGRST125 for a path it has no route for.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_STATUS = {"23505": 409, "23503": 409, "42P01": 404}


class PostgrestError(Exception):
    def __init__(self, status: int, code: str | None, message: str, details: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"code": code, "message": message, "details": details,
                                          "hint": hint}


class FakePostgrest:
    def __init__(self, dsn: str, keys: dict[str, str], port: int = 0) -> None:
        self.dsn = dsn
        self.keys = keys  # api key -> database role
        self.port = port
        self.requests: list[tuple[str, str, int, int]] = []  # method, table, rows, status
        self.inject: list[tuple[int, dict | str]] = []  # answers to give before touching the db
        self.before: Callable[[str, str], None] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.arrivals: list[tuple[str, list[str]]] = []  # table, keys of each accepted upsert

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePostgrest:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._sockets.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._sockets.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def do_PATCH(self) -> None:
                server._handle(self, "PATCH")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # a client that went away (the tests cut connections on purpose)

        self._httpd = Server(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True,
                         kwargs={"poll_interval": 0.05}).start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until `start` again (on the same port)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            with self._lock:  # kept-alive connections die too, as they do when a server goes
                for sock in list(self._sockets):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    # -- one request -----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        table = parts.path.removeprefix("/rest/v1/").strip("/")
        rows = 0
        try:
            role = self._role(h)
            if self.before is not None:
                self.before(method, table)
            if "/" in table or not parts.path.startswith("/rest/v1/"):
                # what PostgREST answers a URL it has no route for (SUPABASE_URL ending in
                # /rest/v1 makes supabase-py ask for /rest/v1/rest/v1/<table>)
                raise PostgrestError(404, "PGRST125", "Invalid path specified in request URL")
            if self.inject:
                status, body = self.inject.pop(0)
                raise PostgrestError(status, *(body.get(k) for k in ("code", "message"))) \
                    if isinstance(body, dict) else _RawError(status, body)
            params = parse_qsl(parts.query, keep_blank_values=True)
            prefer = {p.strip() for p in ",".join(h.headers.get_all("Prefer") or []).split(",")}
            payload = json.loads(raw) if raw else None
            if isinstance(payload, list):
                rows = len(payload)
            status, body, headers = self._run(role, method, table, params, prefer, payload)
            conflict = dict(params).get("on_conflict")
            if method == "POST" and conflict and isinstance(payload, list):
                with self._lock:
                    self.arrivals.append((table, [str(r.get(conflict)) for r in payload]))
        except _RawError as exc:
            status, body, headers = exc.status, exc.text, {"Content-Type": "text/plain"}
        except PostgrestError as exc:
            status, body, headers = exc.status, json.dumps(exc.body), {}
        with self._lock:
            self.requests.append((method, table, rows, status))
        data = body.encode() if isinstance(body, str) else b""
        h.send_response(status)
        h.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _role(self, h: BaseHTTPRequestHandler) -> str:
        key = h.headers.get("apikey") or ""
        if key not in self.keys:
            raise PostgrestError(401, None, "Invalid API key",
                                 hint="Double check your Supabase `anon` or `service_role` API key.")
        bearer = (h.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if bearer and bearer not in self.keys:
            raise PostgrestError(401, "PGRST301", "JWSError JWSInvalidSignature")
        return self.keys[bearer or key]

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(self.dsn, connect_timeout=2)
            except psycopg.OperationalError as exc:
                raise PostgrestError(503, "PGRST001", "Database client error. Retrying the "
                                     "connection.", str(exc).strip()) from exc
            self._local.conn = conn
        return conn

    def _run(self, role: str, method: str, table: str, params: list[tuple[str, str]],
             prefer: set[str], payload) -> tuple[int, str, dict]:
        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                if method == "POST":
                    return self._insert(conn, table, params, prefer, payload)
                if method == "PATCH":
                    return self._update(conn, table, params, prefer, payload)
                return self._select(conn, table, params, prefer)
        except psycopg.OperationalError as exc:
            conn.close()
            raise PostgrestError(503, "PGRST001", "Database client error. Retrying the "
                                 "connection.", str(exc).strip()) from exc
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            status = _STATUS.get(state, 400)
            if state == "42501":
                status = 401 if role == "anon" else 403
            diag = exc.diag
            raise PostgrestError(status, state, diag.message_primary or str(exc),
                                 diag.message_detail, diag.message_hint) from exc

    def _where(self, params: list[tuple[str, str]]) -> tuple[sql.Composable, list]:
        clauses, args = [], []
        for name, value in params:
            if name in ("select", "order", "limit", "offset", "on_conflict", "columns"):
                continue
            op, _, operand = value.partition(".")
            column = sql.Identifier(name)
            if op == "is":
                clauses.append(sql.SQL("{} IS {}").format(
                    column, sql.SQL({"null": "NULL", "true": "TRUE", "false": "FALSE"}[operand])))
            elif op == "in":
                items = [v.strip('"') for v in operand.strip("()").split(",")]
                clauses.append(sql.SQL("{}::text = ANY(%s)").format(column))
                args.append(items)
            else:
                clauses.append(sql.SQL("{} {} %s").format(column, sql.SQL(_OPS[op])))
                args.append(operand)
        if not clauses:
            return sql.SQL(""), args
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), args

    def _shape(self, conn, query: sql.Composable, args: list, prefer: set[str],
               ok: int) -> tuple[int, str, dict]:
        if "return=minimal" in prefer and ok != 200:
            conn.execute(query, args)
            return ok, "", {}
        wrapped = sql.SQL("WITH _r AS ({}) SELECT coalesce(json_agg(_r), '[]')::text, count(*) "
                          "FROM _r").format(query)
        text, count = conn.execute(wrapped, args).fetchone()
        return ok, text, {}

    def _insert(self, conn, table, params, prefer, payload) -> tuple[int, str, dict]:
        rows = payload if isinstance(payload, list) else [payload]
        q = dict(params)
        if "columns" in q:
            columns = [c.strip().strip('"') for c in q["columns"].split(",")]
        else:
            columns = list(dict.fromkeys(k for r in rows for k in r))
        target = sql.Identifier(table)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        query = sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM json_populate_recordset(NULL::{t}, "
                        "%s::json)").format(t=target, c=cols)
        merge = "resolution=merge-duplicates" in prefer
        ignore = "resolution=ignore-duplicates" in prefer
        if merge or ignore:
            conflict = q.get("on_conflict") or self._primary_key(conn, table)
            keys = sql.SQL(", ").join(sql.Identifier(k.strip()) for k in conflict.split(","))
            if ignore:
                query += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(keys)
            else:
                sets = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                                          for c in columns)
                query += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(keys, sets)
        query += sql.SQL(" RETURNING *")
        return self._shape(conn, query, [json.dumps(rows)], prefer, 201)

    def _update(self, conn, table, params, prefer, payload) -> tuple[int, str, dict]:
        where, args = self._where(params)
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in payload)
        query = sql.SQL("UPDATE {} SET {}").format(sql.Identifier(table), sets) + where
        query += sql.SQL(" RETURNING *")
        status = 200 if "return=representation" in prefer else 204
        return self._shape(conn, query, [*payload.values(), *args], prefer, status)

    def _select(self, conn, table, params, prefer) -> tuple[int, str, dict]:
        q = dict(params)
        columns = q.get("select", "*")
        picked = sql.SQL("*") if columns == "*" else sql.SQL(", ").join(
            sql.Identifier(c.strip()) for c in columns.split(","))
        where, args = self._where(params)
        query = sql.SQL("SELECT {} FROM {}").format(picked, sql.Identifier(table)) + where
        total = None
        if "count=exact" in prefer:
            total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                                 + where, args).fetchone()[0]
        if "order" in q:
            terms = []
            for term in q["order"].split(","):
                name, *mods = term.split(".")
                t = sql.Identifier(name)
                for m in mods:
                    t += sql.SQL({"asc": " ASC", "desc": " DESC", "nullsfirst": " NULLS FIRST",
                                  "nullslast": " NULLS LAST"}[m])
                terms.append(t)
            query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(terms)
        if "limit" in q:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(int(q["limit"])))
        if "offset" in q:
            query += sql.SQL(" OFFSET {}").format(sql.Literal(int(q["offset"])))
        status, text, headers = self._shape(conn, query, args, prefer, 200)
        count = len(json.loads(text))
        start = int(q.get("offset", 0))
        headers["Content-Range"] = (f"{start}-{start + count - 1}" if count else "*") + (
            f"/{total}" if total is not None else "/*")
        return status, text, headers

    @staticmethod
    def _primary_key(conn, table: str) -> str:
        row = conn.execute(
            "SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary", (f"public.{table}",)).fetchone()
        return row[0]


class _RawError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text
