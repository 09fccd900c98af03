"""The execve(2) transform: what a process's credentials become when it runs a file.

Everything that decides it lives in this module, written as the documented formulas
(capabilities(7), "Transformation of capabilities during execve()") and checked line by line
against the kernel source:

* fs/exec.c ``bprm_fill_uid()``: a set-user-ID file makes the new euid its owner; a set-group-ID
  file makes the new egid its group, but only when the file is also group-executable
  (``S_ISGID`` without ``S_IXGRP`` marks mandatory locking, not set-group-ID); both are ignored on
  a ``nosuid`` mount and under no_new_privs.
* security/commoncap.c ``get_file_caps()`` / ``get_vfs_caps_from_disk()`` /
  ``rootid_owns_currentns()``: file capabilities are ignored on a ``nosuid`` mount, and a
  revision 3 entry only counts when its rootid is root of the caller's user namespace or an
  ancestor (revisions 1 and 2 have rootid 0 of the filesystem's namespace).  Bits above
  ``CAP_LAST_CAP`` are masked off.
* ``bprm_caps_from_vfs_caps()``: ``pP' = (X & fP) | (pI & fI)``; with the effective bit set,
  any ``fP`` capability missing from ``pP'`` fails the exec with **EPERM**.
* ``handle_privileged_root()`` (skipped under ``SECBIT_NOROOT``): a set-user-ID-root file that
  also carries file capabilities, run by a non-root real uid, gets only its file capabilities;
  otherwise euid 0 or ruid 0 gives ``pP' = X | pI``, and euid 0 makes everything effective.
* ``cap_bprm_creds_from_file()``: under no_new_privs (or another unsafe exec), when the ids change
  or ``pP'`` gained capabilities, euid/egid fall back to the real ids and ``pP' &= pP``; the ids
  become ``suid = fsuid = euid``; file capabilities or changed ids clear the ambient set;
  ``pP' |= pA'``; ``pE' = fE ? pP' : pA'``; ``SECBIT_KEEP_CAPS`` is cleared; ``pI`` and the
  bounding set ``X`` are unchanged; and the exec is *secure* (``AT_SECURE``, the dynamic linker
  ignores ``LD_*``) when ids changed or a non-root process gains capabilities.

Behaviour that changed between kernel versions is selected by :class:`Kernel`:

* "ids changed" (for the unsafe path, ambient clearing and ``AT_SECURE``): before Linux 6.17 it
  compared the new euid/egid with the old *real* uid/gid (``__is_setuid``/``__is_setgid``, in
  place since Linux 2.4.0-prerelease).  Commit 337490f0007f ("exec: Correct the permission check
  for unsafe exec", Eric W. Biederman, merged for 6.17) compares the new euid with the old *euid*
  and asks ``in_group_p(new egid)`` (old fsgid or a supplementary group); ``AT_SECURE`` keeps
  also firing when the final euid/egid differ from the real ones.
* ``CAP_LAST_CAP``: 37 (cap_audit_read) before 5.8, 39 in 5.8 (cap_perfmon, cap_bpf), 40 from 5.9
  (cap_checkpoint_restore); file capability bits above it are ignored.
* Revision 3 (namespaced) file capabilities exist since 4.14 (commit 8db6c34f1dbc) and ambient
  capabilities since 4.3 (commit 58319057b784): the model covers Linux 4.14 and later.

Two things the model cannot see and takes as input: the host uids that are root of the caller's
user namespace chain (``userns_root_uids``), and whether the exec is *unsafe* for another reason
than no_new_privs (``unsafe``: ptraced by a tracer without CAP_SYS_PTRACE over the new
namespace, or sharing ``fs_struct`` with a task outside the thread group; see
``check_unsafe_exec()`` in fs/exec.c).  Ids and capability sets are the caller's own view
(what its ``/proc/self/status`` shows); ``setuid_owner``/``setgid_owner`` are the file's owner
and group as mapped into the caller's namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from unroot.model.caps import EMPTY, CapSet, cap_name
from unroot.model.creds import SECBIT_KEEP_CAPS, SECBIT_NOROOT, Creds, Ids
from unroot.model.errors import ParseError, UsageError
from unroot.model.filecaps import FileCaps
from unroot.model.verdict import Fix, Reason, Verdict

CAP_SETUID = 7

#: (first version, CAP_LAST_CAP) — include/uapi/linux/capability.h over time.
_LAST_CAP_SINCE: tuple[tuple[tuple[int, int], int], ...] = (
    ((5, 9), 40),
    ((5, 8), 39),
    ((0, 0), 37),
)
OLDEST_MODELLED = (4, 14)
#: Linux 6.17: commit 337490f0007f, "exec: Correct the permission check for unsafe exec".
ID_CHANGED_USES_EUID_SINCE = (6, 17)


@dataclass(frozen=True, slots=True)
class Kernel:
    """The kernel whose rules to apply: only ``version`` (major, minor) matters."""

    version: tuple[int, int] = (6, 18)

    def __post_init__(self) -> None:
        if self.version < OLDEST_MODELLED:
            raise UsageError(
                f"unroot models Linux {OLDEST_MODELLED[0]}.{OLDEST_MODELLED[1]} and later "
                f"(namespaced file capabilities), not {self}"
            )

    @classmethod
    def parse(cls, text: str) -> Kernel:
        """``6.18``, ``6.18.44`` or a ``uname -r`` string such as ``5.15.0-91-generic``."""
        match = re.match(r"\s*(\d{1,3})\.(\d{1,3})(?:[.\-+~_][\w.\-+~]*)?\s*$", text)
        if not match:
            raise ParseError(f"not a kernel version: {text!r} (expected e.g. 6.18 or 5.15.0-91)")
        return cls((int(match.group(1)), int(match.group(2))))

    @property
    def last_cap(self) -> int:
        """``CAP_LAST_CAP`` of this version (``/proc/sys/kernel/cap_last_cap``)."""
        return next(last for since, last in _LAST_CAP_SINCE if self.version >= since)

    @property
    def id_changed_uses_euid(self) -> bool:
        """True from 6.17: "ids changed" compares with the old euid and the caller's groups."""
        return self.version >= ID_CHANGED_USES_EUID_SINCE

    def __str__(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


#: The newest kernel the model knows: what a question about an unknown host (lint) assumes.
LATEST = Kernel((6, 18))
RUNNING = LATEST  # the name older callers import; live questions pass the running kernel


def running_kernel(release: str) -> Kernel:
    """The kernel of ``uname -r`` (``6.1.0-28-amd64``, ``5.15.0-1051-azure``, ``6.18.0+``);
    a release too old for the model is refused, one that does not parse gives :data:`LATEST`."""
    try:
        return Kernel.parse(release)
    except ParseError:
        return LATEST


@dataclass(frozen=True, slots=True)
class ExecFile:
    """The program being executed, as far as execve's credential rules look at it.

    ``ids_mapped``: the file's owner and group both have a mapping in the caller's user
    namespace (False: bprm_fill_uid() leaves the ids alone).  ``executable``: some execute bit
    is set (or the caller may execute it); ``noexec``: the file is on a ``noexec`` mount.
    Either one false/true makes execve fail with EACCES before any credential changes.
    """

    path: str = "the program"
    file_caps: FileCaps | None = None
    setuid_owner: int | None = None
    setgid_owner: int | None = None
    group_executable: bool = True
    nosuid: bool = False
    ids_mapped: bool = True
    executable: bool = True
    noexec: bool = False


@dataclass(frozen=True, slots=True)
class ExecResult:
    """The outcome of one execve: the errno (``EPERM`` or None) and the new credentials."""

    errno: str | None
    creds: Creds
    secure_exec: bool
    reasons: tuple[Reason, ...] = ()
    fixes: tuple[Fix, ...] = ()

    @property
    def ok(self) -> bool:
        return self.errno is None

    def to_json(self) -> dict[str, Any]:
        """The keys of ``unroot explain exec --json`` (PRODUCT.md)."""
        creds = self.creds
        return {
            "exec": "ok" if self.errno is None else self.errno,
            "uid": creds.uid.triple(),
            "gid": creds.gid.triple(),
            "permitted": creds.permitted.names(),
            "effective": creds.effective.names(),
            "inheritable": creds.inheritable.names(),
            "bounding": creds.bounding.names(),
            "ambient": creds.ambient.names(),
            "secure_exec": self.secure_exec,
            "no_new_privs": creds.no_new_privs,
            "securebits": creds.securebits,
            "reasons": [reason.to_json() for reason in self.reasons],
            "fixes": [fix.to_json() for fix in self.fixes],
        }

    def verdict(self) -> Verdict:
        extra = {k: v for k, v in self.to_json().items() if k not in ("reasons", "fixes")}
        return Verdict(
            allowed=self.errno is None,
            errno=self.errno,
            reasons=self.reasons,
            fixes=self.fixes,
            extra=extra,
        )


@dataclass
class _Trace:
    """Reasons and fixes collected while the transform runs (private, mutable)."""

    reasons: list[Reason] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)

    def why(self, code: str, text: str) -> None:
        self.reasons.append(Reason(code, text))

    def fix(self, why: str, command: str | None = None) -> None:
        self.fixes.append(Fix(why, command))


def _caps(caps: CapSet) -> str:
    return str(caps) if caps else "nothing"


def _flag(caps: CapSet) -> str:
    """``NET_BIND_SERVICE,NET_RAW``: the spelling runtimes' --cap-add flags use."""
    return ",".join(cap_name(bit).removeprefix("cap_").upper() for bit in caps)


def execve(
    creds: Creds,
    file: ExecFile,
    *,
    userns_root_uids: tuple[int, ...] = (0,),
    kernel: Kernel = RUNNING,
    unsafe: bool = False,
) -> ExecResult:
    """The credentials after ``creds`` executes ``file`` (see the module doc for the rules).

    ``userns_root_uids``: the host uids that are root of the caller's user namespace and of each
    ancestor (``(0,)`` in the initial namespace); a revision 3 file capability counts only when
    its rootid is one of them (rootid 0, used by revisions 1 and 2, always is).
    """
    old = creds
    trace = _Trace()
    path = file.path

    # -- fs/exec.c do_open_execat() / may_open(): noexec mount, no execute permission ----------
    if file.noexec or not file.executable:
        return _eacces(old, file, trace)

    # -- fs/exec.c bprm_fill_uid(): set-user-ID and set-group-ID files --------------------------
    euid, egid = old.uid.effective, old.gid.effective
    wants_setid = file.setuid_owner is not None or file.setgid_owner is not None
    if wants_setid and not file.ids_mapped:
        trace.why(
            "setid-ids-unmapped",
            f"the owner or group of {path} has no mapping in the caller's user namespace: "
            "its set-user-ID/set-group-ID bits are ignored",
        )
    elif wants_setid and file.nosuid:
        trace.why(
            "nosuid-ignored-setid",
            f"{path} is on a nosuid mount: its set-user-ID/set-group-ID bits are ignored",
        )
    elif wants_setid and old.no_new_privs:
        trace.why(
            "setuid-ignored-nnp",
            f"no_new_privs is set: the set-user-ID/set-group-ID bits of {path} are ignored",
        )
    elif wants_setid:
        if file.setuid_owner is not None:
            euid = file.setuid_owner
            trace.why("setuid", f"{path} is set-user-ID: the effective uid becomes {euid}")
        if file.setgid_owner is not None and file.group_executable:
            egid = file.setgid_owner
            trace.why("setgid", f"{path} is set-group-ID: the effective gid becomes {egid}")
        elif file.setgid_owner is not None:
            trace.why(
                "setgid-not-group-executable",
                f"{path} has the set-group-ID bit but no group execute bit: that marks "
                "mandatory locking, so the gid does not change",
            )

    # -- security/commoncap.c get_file_caps(): the file's capabilities ------------------------
    bounding, pinh = old.bounding, old.inheritable
    valid = CapSet.all(kernel.last_cap)
    has_fcap = effective = False
    f_permitted = f_inheritable = EMPTY
    fcaps = file.file_caps
    if fcaps is not None and file.nosuid:
        trace.why(
            "nosuid-ignored-file-caps",
            f"{path} is on a nosuid mount: its file capabilities ({fcaps.to_text()}) are ignored",
        )
        trace.fix(
            f"run {path} from a mount without nosuid (or remount it with suid)",
            "mount -o remount,suid <the mount point of the file>",
        )
    elif fcaps is not None and fcaps.revision == 3 and fcaps.rootid not in (*userns_root_uids, 0):
        trace.why(
            "v3-rootid-foreign",
            f"{path} has namespaced (v3) file capabilities for rootid {fcaps.rootid}, which is "
            f"not root of the caller's user namespace or an ancestor (root is host uid "
            f"{' / '.join(str(u) for u in userns_root_uids)}): the file counts as having none",
        )
        trace.fix(
            "write the capabilities for the namespace that runs the file "
            "(or as real root on the host, which writes a v2 entry valid everywhere)",
            f"setcap -n {userns_root_uids[0]} '{fcaps.to_text()}' {path}",
        )
    elif fcaps is not None:
        has_fcap = True
        effective = fcaps.effective
        f_permitted, f_inheritable = fcaps.permitted & valid, fcaps.inheritable & valid
    permitted = (bounding & f_permitted) | (pinh & f_inheritable)
    if has_fcap:
        missing = f_permitted - permitted
        if effective and missing:
            return _eperm(old, file, missing, trace)
        if missing:
            trace.why(
                "file-caps-not-granted",
                f"{_caps(missing)} in the file permitted set of {path} is outside the bounding "
                f"set and not inheritable: without the effective bit the exec succeeds without it",
            )
            trace.fix(
                f"add {_flag(missing)} back to the bounding set",
                f"docker run --cap-add {_flag(missing)} …",
            )
        if permitted:
            trace.why(
                "file-caps",
                f"{path} has file capabilities {fcaps.to_text() if fcaps else ''}: "
                f"pP' = (bounding & fP) | (pI & fI) = {_caps(permitted)}",
            )

    # -- handle_privileged_root(): root emulation ---------------------------------------------
    ruid = old.uid.real
    if old.securebits & SECBIT_NOROOT:
        if euid == 0 or ruid == 0:
            trace.why(
                "secbit-noroot",
                "SECBIT_NOROOT is set: uid 0 gets no capabilities from execve",
            )
    elif has_fcap and ruid != 0 and euid == 0:
        trace.why(
            "setuid-root-with-file-caps",
            f"{path} is set-user-ID root and has file capabilities: a non-root caller gets "
            "only the file capabilities, not all of root's",
        )
    else:
        if euid == 0 or ruid == 0:
            permitted = bounding | pinh
        if euid == 0:
            effective = True
            trace.why(
                "root-emulation",
                "the effective uid is 0: pP' = bounding | pI, and all of it is effective",
            )
        elif ruid == 0:
            trace.why(
                "root-emulation",
                "the real uid is 0: pP' = bounding | pI, but the effective uid is not 0, so "
                "none of it is effective",
            )

    # -- the unsafe / no_new_privs path -------------------------------------------------------
    if kernel.id_changed_uses_euid:
        ids_changed = euid != old.uid.effective or not old.in_group(egid)
    else:
        ids_changed = euid != ruid or egid != old.gid.real
    gained = not permitted.issubset(old.permitted)
    if (ids_changed or gained) and (old.no_new_privs or unsafe):
        if old.no_new_privs or CAP_SETUID not in old.effective:
            if (euid, egid) != (ruid, old.gid.real):
                trace.why(
                    "nnp-reset-ids",
                    f"{'no_new_privs' if old.no_new_privs else 'an unsafe exec'}: the effective "
                    f"ids fall back to the real ones ({ruid}/{old.gid.real})",
                )
            euid, egid = ruid, old.gid.real
        lost = permitted - old.permitted
        permitted &= old.permitted
        if lost:
            trace.why(
                "nnp-dropped-caps",
                f"{'no_new_privs is set' if old.no_new_privs else 'the exec is unsafe'}: the "
                f"new permitted set is cut to the old one ({_caps(old.permitted)}), so "
                f"{_caps(lost)} is not granted",
            )
            if old.no_new_privs:
                trace.fix(
                    f"give the process {_flag(lost)} before this exec (ambient, or a permitted "
                    "set the runtime fills), or allow privilege escalation: drop "
                    "--security-opt no-new-privileges / allowPrivilegeEscalation: false / "
                    "NoNewPrivileges=yes",
                )

    # -- ambient, then permitted and effective ------------------------------------------------
    ambient = old.ambient
    if ambient and (has_fcap or ids_changed):
        cause = "the file has capabilities" if has_fcap else "the exec changes the ids"
        trace.why("ambient-cleared", f"{cause}: the ambient set ({_caps(ambient)}) is cleared")
        if has_fcap:
            trace.fix(
                f"remove the file capabilities of {path} so the ambient set survives",
                f"setcap -r {path}",
            )
        ambient = EMPTY
    elif ambient:
        trace.why(
            "ambient-preserved",
            f"the ambient set ({_caps(ambient)}) is kept and added to permitted and effective",
        )
    permitted |= ambient
    new_effective = permitted if effective else ambient
    if not has_fcap and not ambient and old.permitted and not permitted:
        trace.why(
            "no-file-caps-nonroot",
            f"{path} has no file capabilities, no root emulation applies and no ambient "
            "capabilities carry over: execve empties the permitted and effective sets",
        )
    if has_fcap and not effective and permitted - ambient:
        trace.why(
            "file-caps-not-effective",
            f"the file effective bit of {path} is not set: {_caps(permitted - ambient)} is "
            "permitted but not effective until the program raises it (capset)",
        )

    # -- secure exec (AT_SECURE) --------------------------------------------------------------
    raised = ruid != 0 and (effective or not permitted.issubset(ambient))
    if kernel.id_changed_uses_euid:
        secure = ids_changed or euid != ruid or egid != old.gid.real or raised
    else:
        secure = ids_changed or raised
    if secure:
        cause = (
            "a non-root process gains capabilities"
            if raised and not ids_changed and (euid, egid) == (ruid, old.gid.real)
            else "the ids change or the effective ids differ from the real ones"
        )
        trace.why(
            "secure-exec",
            f"AT_SECURE is set ({cause}): the dynamic linker ignores LD_PRELOAD, "
            "LD_LIBRARY_PATH and similar variables, and the process is not dumpable",
        )

    new = Creds(
        uid=Ids(ruid, euid, euid, euid),
        gid=Ids(old.gid.real, egid, egid, egid),
        groups=old.groups,
        inheritable=pinh,
        permitted=permitted,
        effective=new_effective,
        bounding=bounding,
        ambient=ambient,
        securebits=old.securebits & ~SECBIT_KEEP_CAPS,
        no_new_privs=old.no_new_privs,
    )
    if not trace.reasons:
        trace.why(
            "exec-ok",
            f"execve succeeds: permitted {_caps(permitted)}, effective {_caps(new_effective)}",
        )
    return ExecResult(None, new, secure, tuple(trace.reasons), tuple(trace.fixes))


def _eacces(old: Creds, file: ExecFile, trace: _Trace) -> ExecResult:
    """do_open_execat(): a file on a noexec mount, or one the caller may not execute."""
    path = file.path
    if file.noexec:
        trace.why("noexec-mount", f"{path} is on a noexec mount: execve fails with EACCES")
        trace.fix(
            f"run {path} from a mount without noexec (or remount it with exec)",
            "mount -o remount,exec <the mount point of the file>",
        )
    else:
        trace.why(
            "not-executable",
            f"{path} has no execute permission for the caller: execve fails with EACCES",
        )
        trace.fix("give the file an execute bit", f"chmod +x {path}")
    return ExecResult("EACCES", old, False, tuple(trace.reasons), tuple(trace.fixes))


def _eperm(old: Creds, file: ExecFile, missing: CapSet, trace: _Trace) -> ExecResult:
    """bprm_caps_from_vfs_caps(): fE set and a file-permitted capability is unobtainable."""
    path = file.path
    outside = missing - old.bounding
    where = "is not in the bounding set" if outside == missing else "cannot be obtained"
    trace.why(
        "file-caps-eperm",
        f"{path} has the file effective bit set and {_caps(missing)} in its permitted set "
        f"{where}: execve fails with EPERM before the program runs",
    )
    if outside:
        trace.fix(
            f"add {_flag(outside)} back to the bounding set (Docker --cap-add, Kubernetes "
            "securityContext.capabilities.add, systemd CapabilityBoundingSet=)",
            f"docker run --cap-add {_flag(outside)} …",
        )
    trace.fix(
        "or remove the effective bit, so the program starts without the capability and must "
        "raise what it gets itself",
        f"setcap '{replace(file.file_caps or FileCaps(), effective=False).to_text()}' {path}",
    )
    return ExecResult("EPERM", old, False, tuple(trace.reasons), tuple(trace.fixes))
