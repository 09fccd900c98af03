"""Red team 2: the working directory the service inherits from root (drop.py ``settle``).

docs/run.md: "the working directory stays unroot's if the user may search it, else it is ``/``".
``settle`` asks ``os.access(".", X_OK)`` as the service's user — which looks at the last
directory only: "." is resolved from the current directory, the directories above it are never
walked. Started from ``/root/project`` (0755, the way a checkout usually is) below ``/root``
(0700), the service starts *inside* root's home, where it could never get by path, and reads
root's files there by relative name (``.env``, ``config/secrets.yml``, a deploy key) — as does
whoever finds a path traversal in the network service.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from launchutil import as_nobody, run_unroot

pytestmark = pytest.mark.root


@pytest.mark.parametrize("mode", [[], ["--supervise", "--restart", "never"]], ids=["exec", "sup"])
def test_the_service_does_not_start_in_a_directory_it_cannot_reach(mode: list[str]) -> None:
    home = Path(tempfile.mkdtemp(prefix="unroot-roothome-"))  # stands for /root: 0700
    try:
        home.chmod(0o700)
        project = home / "project"
        project.mkdir()
        project.chmod(0o755)
        (project / ".env").write_text("DATABASE_PASSWORD=root-only\n")
        (project / ".env").chmod(0o644)
        direct = as_nobody(["/bin/cat", str(project / ".env")], cwd="/")
        assert direct.returncode != 0, "nobody can read it by path: the setup is wrong"
        result = run_unroot(
            [*mode, "--user", "nobody", "--", "/bin/sh", "-c", "pwd; cat .env"], cwd=project
        )
        assert "root-only" not in result.stdout, (
            f"the service (uid nobody) started in {project}, below the 0700 {home}, and read "
            f"root's file there: {result.stdout!r}"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
