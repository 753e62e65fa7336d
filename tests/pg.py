"""Find or start the PostgreSQL server the tests use.

Order: `BACKOFFICE_TEST_DATABASE_URL`, else the local server on 127.0.0.1:5432 if it answers,
else a throwaway cluster started from the installed PostgreSQL binaries. No server → a clear
failure, never a silent skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg
from sqlalchemy.engine import make_url

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_throwaway_cluster() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) + [
        p for p in [shutil.which("initdb")] if p
    ]
    if not candidates:
        raise RuntimeError(
            "No PostgreSQL for the tests: set BACKOFFICE_TEST_DATABASE_URL, run a server on "
            "127.0.0.1:5432, or install the PostgreSQL server binaries (initdb, pg_ctl)."
        )
    bindir = os.path.dirname(candidates[-1])
    datadir = tempfile.mkdtemp(prefix="backoffice-pg-")
    port = _free_port()
    # initdb refuses to run as root: run the cluster as the postgres (or nobody) user.
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        shutil.chown(datadir, user)
        run_as = ["runuser", "-u", user, "--"]
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            f"{bindir}/pg_ctl",
            "-D",
            datadir,
            "-w",
            "-l",
            f"{datadir}/log",
            "-o",
            f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )

    def _stop() -> None:
        subprocess.run(
            [*run_as, f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(datadir, ignore_errors=True)

    atexit.register(_stop)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        if _answers(url):
            return url
        time.sleep(0.1)
    raise RuntimeError(f"The throwaway PostgreSQL cluster in {datadir} did not start.")


def server_url() -> str:
    """A URL to a PostgreSQL server's maintenance database, starting one if need be."""
    url = os.environ.get("BACKOFFICE_TEST_DATABASE_URL")
    if url:
        if not _answers(url):
            raise RuntimeError(f"BACKOFFICE_TEST_DATABASE_URL is set but does not answer: {url}")
        return url
    if _answers(LOCAL_URL):
        return LOCAL_URL
    return _start_throwaway_cluster()


def recreate_database(server: str, name: str) -> str:
    """Drop and create database `name` on `server`; return its URL."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    """Drop database `name` on `server`, closing its connections."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
