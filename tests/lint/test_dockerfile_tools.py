"""The tool behaviours the Dockerfile parser models, checked with the real tools on this machine.

Each case copies/changes a file carrying ``cap_net_bind_service=ep`` and reads the result with
getcap; the table is the one in :mod:`unroot.sources.dockerfile.parser`'s docstring.  A case whose
tool is missing is skipped, not passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

CAPS = "cap_net_bind_service=ep"

#: (description, shell commands run in the directory holding ./bin, the path to check, kept?)
CASES = [
    ("cp", "cp bin out", "out", False),
    ("cp -p", "cp -p bin out", "out", False),
    (
        "cp --preserve=mode,ownership,timestamps",
        "cp --preserve=mode,ownership,timestamps bin out",
        "out",
        False,
    ),
    ("cp -a", "cp -a bin out", "out", True),
    ("cp --archive", "cp --archive bin out", "out", True),
    ("cp --preserve=xattr", "cp --preserve=xattr bin out", "out", True),
    ("cp --preserve=all", "cp --preserve=all bin out", "out", True),
    ("cp -a --no-preserve=xattr", "cp -a --no-preserve=xattr bin out", "out", False),
    ("install", "install bin out", "out", False),
    ("install -p -m 0755", "install -p -m 0755 bin out", "out", False),
    ("mv", "cp -a bin b2 && mv b2 out", "out", True),
    ("ln (hard)", "ln bin out", "out", True),
    ("tar c / x", "tar cf x.tar bin && mkdir d && tar xf x.tar -C d", "d/bin", False),
    (
        "tar c --xattrs / x --xattrs",
        "tar --xattrs -cf x.tar bin && mkdir d && tar --xattrs -xf x.tar -C d",
        "d/bin",
        False,
    ),
    (
        "tar c --xattrs / x --xattrs --xattrs-include=*",
        "tar --xattrs -cf x.tar bin && mkdir d && tar --xattrs --xattrs-include='*' -xf x.tar -C d",
        "d/bin",
        True,
    ),
    (
        "tar x --xattrs-include=security.*",
        "tar --xattrs -cf x.tar bin && mkdir d && tar --xattrs-include='security.*' -xf x.tar -C d",
        "d/bin",
        True,
    ),
    (
        "tar c plain / x --xattrs-include=*",
        "tar -cf x.tar bin && mkdir d && tar --xattrs --xattrs-include='*' -xf x.tar -C d",
        "d/bin",
        False,
    ),
    (
        "tar pipe with xattrs",
        "mkdir d && tar --xattrs -cf - bin | tar --xattrs --xattrs-include='*' -xf - -C d",
        "d/bin",
        True,
    ),
    ("rsync -a", "rsync -a bin out", "out", False),
    ("rsync -aA", "rsync -aA bin out", "out", False),
    ("rsync -aX", "rsync -aX bin out", "out", True),
    ("chown to the same owner", "chown root bin", "bin", False),
    ("chgrp", "chgrp root bin", "bin", False),
    ("chown -R of the parent", "mkdir d && cp -a bin d/bin && chown -R root d", "d/bin", False),
    ("chmod", "chmod 0755 bin", "bin", True),
    ("touch", "touch bin", "bin", True),
    ("sed -i", "sed -i s/zzzzzz/yyyyyy/ bin", "bin", False),
    ("strip", "strip bin", "bin", False),
    ("> redirection", "cat bin > tmp && cat tmp > bin", "bin", False),
    (
        "cp -a as a non-root user",
        "chmod 0777 . && setpriv --reuid=65534 --regid=65534 --clear-groups cp -a bin out",
        "out",
        False,
    ),
]


def _tools(command: str) -> list[str]:
    words = [w for w in command.replace("&&", " ").replace("|", " ").split() if w.isidentifier()]
    return [w for w in ("tar", "rsync", "strip", "setpriv", "sed") if w in words]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set and preserve file capabilities")
@pytest.mark.parametrize(("what", "command", "check", "kept"), CASES, ids=[c[0] for c in CASES])
def test_tool_xattr_behaviour(
    tmp_path: Path, what: str, command: str, check: str, kept: bool
) -> None:
    for tool in ("setcap", "getcap", *_tools(command)):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    binary = tmp_path / "bin"
    shutil.copy("/bin/true", binary)
    subprocess.run(["setcap", CAPS, str(binary)], check=True)
    subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(
        ["getcap", str(tmp_path / check)], check=True, capture_output=True, text=True
    ).stdout
    assert (CAPS in out) is kept, f"{what}: getcap says {out.strip()!r}"
