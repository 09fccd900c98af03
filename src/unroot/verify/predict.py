"""The model's column: the image's facts and the engine's, through :mod:`unroot.situation.image`.

Nothing runs: USER (resolved in the image's /etc/passwd and /etc/group when it is a name), the
ENTRYPOINT/CMD chain with each program's file capabilities as the engine stores them, the
engine's profile, and the sysctl of the namespace ``--network host`` joins.
"""

from __future__ import annotations

from dataclasses import dataclass

from unroot.errors import UsageError
from unroot.model.execve import ExecFile, Kernel
from unroot.situation.image import CellPrediction, EngineNetns, RunCell, predict_cell
from unroot.verify.engines import ContainerEngine
from unroot.verify.image import ImageFacts


@dataclass(frozen=True, slots=True)
class Identity:
    text: str  # as given: "10001", "10001:10001", "www", "" (root)
    uid: int
    gid: int
    groups: tuple[int, ...]


def _table(text: str | None) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and not line.startswith("#"):
            rows.setdefault(fields[0], fields)
    return rows


def resolve_user(image: ImageFacts, user: str | None) -> Identity:
    """``--user`` (or the image's USER) as the runtime resolves it: ``uid[:gid]`` or names
    from the image's /etc/passwd and /etc/group; a uid without an entry gets gid 0."""
    text = image.user if user is None else user
    name, _, group = text.partition(":")
    passwd = _table(image.read_text("/etc/passwd"))
    groups_file = _table(image.read_text("/etc/group"))
    by_uid = {row[2]: row for row in passwd.values()}
    if not name:
        uid, gid = 0, 0
    elif name.isdigit():
        uid = int(name)
        row = by_uid.get(name)
        gid = int(row[3]) if row and len(row) > 3 and row[3].isdigit() else 0
    elif name in passwd and passwd[name][2].isdigit():
        row = passwd[name]
        uid, gid = int(row[2]), int(row[3]) if len(row) > 3 and row[3].isdigit() else 0
    else:
        raise UsageError(f"user {name!r} is not in {image.ref}'s /etc/passwd")
    if group:
        if group.isdigit():
            gid = int(group)
        elif group in groups_file and groups_file[group][2].isdigit():
            gid = int(groups_file[group][2])
        else:
            raise UsageError(f"group {group!r} is not in {image.ref}'s /etc/group")
    return Identity(text, uid, gid, (gid,))


def predict(  # noqa: PLR0917 - the facts of one run
    engine: ContainerEngine,
    cell: RunCell,
    identity: Identity,
    chain: list[ExecFile],
    port: int,
    netns: EngineNetns,
    kernel: Kernel,
) -> CellPrediction:
    return predict_cell(
        engine.profile,
        cell,
        identity.uid,
        identity.gid,
        identity.groups,
        chain,
        port,
        netns,
        userns_root_uids=engine.userns_root_uids,
        kernel=kernel,
    )
