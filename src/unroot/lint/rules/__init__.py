"""The rules: one module per rule (``urNNN_<topic>.py``), each registered by
:func:`unroot.lint.registry.rule`; :func:`unroot.lint.registry.load_rules` imports them all.

This module holds the phrasing the rules share: a capability edit, a sysctl or no_new_privs
spelled in each kind's syntax (the kind's :class:`~unroot.sources.kinds.Dialect`), why a
bounding set lacks a capability, what set no_new_privs.  Messages say what *will*
happen at run time; every fact in them comes from the situation's model verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable

from unroot.model.caps import CapSet, cap_name
from unroot.situation import NO_CAPS_PROGRAMS, Situation
from unroot.sources._shared import is_script_name, script_execs
from unroot.sources.kinds import KINDS
from unroot.sources.parsed import ImageFile, Location


def flag(caps: CapSet | Iterable[int]) -> str:
    """``NET_BIND_SERVICE,NET_RAW``: the spelling of --cap-add and compose/Kubernetes."""
    return ",".join(cap_name(bit).removeprefix("cap_").upper() for bit in caps)


def add_caps(situation: Situation, caps: CapSet) -> str:
    """The smallest edit that puts ``caps`` into the bounding set, in the file's own syntax."""
    names = flag(caps)
    return KINDS[situation.kind].dialect.add_caps(", ".join(names.split(",")), names)


def bounding_cause(situation: Situation, missing: CapSet) -> str:
    """Why the bounding set lacks ``missing``: the workload's drop, or the runtime default."""
    workload = situation.workload
    if workload is not None and situation.kind == "systemd":
        return "CapabilityBoundingSet= leaves it out"
    if workload is not None and workload.cap_drop:
        dropped = ", ".join(workload.cap_drop)
        if situation.kind == "k8s":
            return f"of `capabilities.drop: [{dropped}]`"
        return f"of `cap_drop: [{dropped}]`"
    return f"{situation.runtime.title} does not grant it by default"


def nnp_cause(situation: Situation) -> str:
    workload = situation.workload
    reason = workload.no_new_privs_reason if workload is not None else ""
    return reason or "no_new_privs"


def drop_nnp(situation: Situation) -> str:
    return KINDS[situation.kind].dialect.drop_nnp


def set_sysctl(situation: Situation, port: int) -> str:
    return KINDS[situation.kind].dialect.set_sysctl(port)


def setcap_in_build(path: str, caps: str = "cap_net_bind_service") -> str:
    return (
        f"give {path} the file capability in the Dockerfile, in the RUN that writes it "
        f"(`setcap '{caps}=+ep' {path}`; COPY and chown lose it)"
    )


def file_cap_fix(situation: Situation, port: int) -> str:
    """How the service itself gets cap_net_bind_service: a file capability on its binary —
    but never on an interpreter (every script it runs would hold it): a launcher instead."""
    service = situation.service
    path = service.path if service is not None else "the binary"
    base = path.rsplit("/", 1)[-1]
    if service is None or NO_CAPS_PROGRAMS.fullmatch(base) or service.role != "service":
        who = situation.service_user.text if situation.service_user else "USER"
        return (
            f"bind :{port} before dropping root and pass the socket in "
            f"(`unroot run -l :{port} --user {who} -- …`, systemd socket activation) — a file "
            f"capability on the interpreter {base} would reach every script it runs"
        )
    script = _script(service.image_file, base)
    if script:
        binary = script_execs(script) or "BINARY"
        which = "" if binary != "BINARY" else ", which lint cannot see"
        return (
            f"not a file capability on {path}: it is a script ({script}), and the kernel "
            "ignores file capabilities on scripts (execve runs the interpreter; CapEff stays "
            "0), while one on the interpreter would reach every script it runs — give it to "
            f"the server binary the script starts{which} "
            f"(`setcap 'cap_net_bind_service=+ep' {binary}` "
            "in the RUN that installs it, if the script execs it as the same user), or bind "
            f":{port} before dropping root and pass the socket in (systemd socket activation, "
            f"`unroot run -l :{port}`)"
        )
    if situation.stage is not None:
        return setcap_in_build(path)
    return f"give {path} the file capability (`setcap cap_net_bind_service=+ep {path}`)"


def _script(file: ImageFile | None, base: str) -> str:
    """Why the service's executable is a script, or "" (not known to be one)."""
    if file is not None and file.script:
        return file.script
    if is_script_name(base):
        return f"its name ends in .{base.rsplit('.', 1)[-1]}"
    return ""


def last_set(file: ImageFile) -> Location | None:
    """Where the build last gave the file its capabilities."""
    found = [event.location for event in file.events if event.action == "set"]
    return found[-1] if found else None


def related_lines(*items: tuple[Location | None, str]) -> tuple[tuple[str, int, str], ...]:
    return tuple((loc.file, loc.line, what) for loc, what in items if loc is not None)
