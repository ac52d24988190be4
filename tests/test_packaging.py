"""What a `pip install` user gets: the SQL inside the wheel, and types."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from audit_py.server import ThrowawayServer

from .conftest import OWNER
from .helpers import migration_ids

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("audit_py-*.whl")
    return built


def test_wheel_carries_migrations_sql_and_types(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.joinpath("migrations").glob("*.sql"):
        assert f"audit_py/migrations/{path.name}" in names
    for path in ROOT.joinpath("sql").glob("*.sql"):
        assert f"audit_py/sql/{path.name}" in names
    assert "audit_py/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_migrates_without_a_checkout(wheel: Path, tmp_path: Path, pg_server: ThrowawayServer,
                                                     empty_database: Callable[..., str]) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    dsn = pg_server.conninfo_for(empty_database(), user=OWNER)
    result = subprocess.run([sys.executable, "-c", "import audit_py, audit_py.schema as m;"
                             " print(m.migrations_dir()); print(audit_py.migrate(__import__('sys').argv[1]))", dsn],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where, applied = result.stdout.splitlines()
    assert Path(where).is_relative_to(tmp_path / "site")
    assert applied == str(migration_ids())


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "audit_py", "bench", "tests"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


def test_mypy_strict_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout
