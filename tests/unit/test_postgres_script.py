"""deploy/postgres.sh: a cluster where its user owns the path, private state, no printed password.

The script changes the mode of no directory it did not make (the older version made the user's
home searchable for the postgres user); the cluster's data directory and every parent up to
a system directory belong to the user the server runs as; the state under CLEARING_HOME is
0700 / 0600; no password reaches its output, whatever the command.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT
from support.services import unavailable

SCRIPT = ROOT / "deploy" / "postgres.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_the_script_changes_no_mode_but_its_own_data_directory():
    commands = [
        line.strip()
        for line in SCRIPT.read_text(encoding="utf-8").splitlines()
        if re.search(r"\b(chmod|chown|setfacl)\b", line) and not line.lstrip().startswith("#")
    ]
    assert commands == ['as_owner chmod 700 "$DATA"']


@pytest.mark.postgres
def test_cluster_path_modes_and_output(pg_app_role_url):
    if os.environ.get("CLEARING_PG_URL"):
        unavailable("an external server: deploy/postgres.sh's cluster is not in use")
    started = run("start")
    assert started.returncode == 0, started.stderr
    state = Path(started.stdout.strip()).parent
    passwords = [(state / f"{role}.password").read_text().strip() for role in ("app", "owner")]
    assert all(len(p) == 32 for p in passwords)
    outputs = [started, run("status"), run("url"), run("url", "owner"), run("url-file", "owner")]
    for done in outputs:
        for password in passwords:
            assert password not in done.stdout + done.stderr
    masked = r"postgresql\+psycopg://clearing_{}:\*\*\*@127\.0\.0\.1:\d+/clearing"
    assert re.fullmatch(masked.format("app"), run("url").stdout.strip())
    assert re.fullmatch(masked.format("owner"), run("url", "owner").stdout.strip())

    # State: 0700 directory, 0600 files, the URL files hold the real URLs.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (state / "app.url").read_text().strip() == pg_app_role_url

    # The data directory and its parents belong to the server's user up to a system directory.
    data = Path(re.search(r"data: (\S+);", started.stderr).group(1))  # type: ignore[union-attr]
    server_user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    owners = []
    for path in [data, *data.parents]:
        owners.append((path, pwd.getpwuid(path.stat().st_uid).pw_name))
    assert owners[0][1] == server_user
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path, owner in owners:
        assert owner in {server_user, "root"}, (path, owner)
        if owner == "root" and server_user != "root":  # above the server user's own path
            assert all(o == "root" for _, o in owners[owners.index((path, owner)) :]), owners
