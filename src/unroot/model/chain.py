"""Exec chains: a runtime's start state followed by a sequence of execs (wrapper → init → service).

Each program runs with what the previous execve left it (:func:`unroot.model.execve.execve`); the
chain stops at the first exec that fails.  :func:`where_lost` answers the question a person asks
of a chain: *which step lost the capability my service needs, and why?*  Typical answers:

* Docker starts a non-root user with an empty permitted set; under no_new_privs the service's
  file capabilities cannot add to it.
* containerd's CRI starts it with the capabilities in its permitted set, so a capped service
  keeps them under ``allowPrivilegeEscalation: false`` — unless a wrapper without file
  capabilities (``sh -c``, an init) is executed first: that exec empties the permitted set, and
  no_new_privs stops the service's file capabilities from refilling it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from unroot.model.caps import cap_name, cap_number
from unroot.model.creds import Creds
from unroot.model.execve import RUNNING, ExecFile, ExecResult, Kernel, execve
from unroot.model.verdict import Fix, Reason


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One exec of the chain: the file, the credentials it started from, and the outcome;
    ``after``: what the program leaves to the next exec when it switches users first (gosu,
    setpriv: :mod:`unroot.model.setid`), None when it does not."""

    file: ExecFile
    before: Creds
    result: ExecResult
    after: Creds | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.file.path, **self.result.to_json()}


@dataclass(frozen=True, slots=True)
class ChainResult:
    """Every step that ran; the last one failed if the chain did not complete."""

    start: Creds
    steps: tuple[ChainStep, ...]

    @property
    def ok(self) -> bool:
        return all(step.result.ok for step in self.steps)

    @property
    def failed_at(self) -> int | None:
        """Index of the exec that failed (EPERM), or None."""
        return next((i for i, step in enumerate(self.steps) if not step.result.ok), None)

    @property
    def final(self) -> Creds:
        """The credentials of the last program that runs (the start state if none ran)."""
        running = [step for step in self.steps if step.result.ok]
        if not running:
            return self.start
        last = running[-1]
        return last.result.creds if last.after is None else last.after

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed_at": self.failed_at,
            "steps": [step.to_json() for step in self.steps],
        }


def exec_chain(
    start: Creds,
    files: Iterable[ExecFile],
    *,
    userns_root_uids: tuple[int, ...] = (0,),
    kernel: Kernel = RUNNING,
    switches: Mapping[int, Callable[[Creds], Creds]] | None = None,
) -> ChainResult:
    """Run ``files`` one after another from ``start``; stop at the first failing exec.

    ``switches[i]``: the change of identity the ``i``-th program makes before it executes the
    next one (a user-switching wrapper: :func:`unroot.model.setid.setuid_switch`)."""
    steps: list[ChainStep] = []
    creds = start
    for index, file in enumerate(files):
        result = execve(creds, file, userns_root_uids=userns_root_uids, kernel=kernel)
        switch = switches.get(index) if switches and result.ok else None
        after = switch(result.creds) if switch is not None else None
        steps.append(ChainStep(file, creds, result, after))
        if not result.ok:
            break
        creds = result.creds if after is None else after
    return ChainResult(start, tuple(steps))


@dataclass(frozen=True, slots=True)
class CapLoss:
    """Where a capability goes missing: the step (index into the chain) and why."""

    step: int
    path: str
    reason: Reason
    fixes: tuple[Fix, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "path": self.path,
            **self.reason.to_json(),
            "fixes": [fix.to_json() for fix in self.fixes],
        }


#: The reasons that explain why a step did not grant a capability, most specific first.
_EXPLAINING = (
    "file-caps-eperm",
    "nosuid-ignored-file-caps",
    "v3-rootid-foreign",
    "nnp-dropped-caps",
    "file-caps-not-granted",
    "secbit-noroot",
    "setuid-root-with-file-caps",
    "no-file-caps-nonroot",
    "ambient-cleared",
)


def _why(result: ExecResult) -> Reason | None:
    for code in _EXPLAINING:
        for reason in result.reasons:
            if reason.code == code:
                return reason
    return None


def _file_offers(file: ExecFile, bit: int) -> bool:
    caps = file.file_caps
    return caps is not None and bit in (caps.permitted | caps.inheritable)


def where_lost(chain: ChainResult, cap: int | str) -> CapLoss | None:
    """Which step leaves ``cap`` out of the effective set of the last program, and why.

    None when the last program runs with ``cap`` effective.  Otherwise the answer names the
    step that dropped it from the permitted set (a wrapper exec'd without file capabilities,
    no_new_privs, a nosuid mount, a foreign v3 rootid, a missing bounding capability…) or, when
    nothing ever held it, the step that should have granted it.
    """
    bit = cap if isinstance(cap, int) else cap_number(cap)
    name = cap_name(bit)
    if not chain.steps:
        if bit in chain.start.effective:
            return None
        return CapLoss(-1, "", Reason("cap-never-held", f"nothing runs, and {name} is not held"))
    failed = chain.failed_at
    if failed is not None:
        step = chain.steps[failed]
        why = _why(step.result)
        text = why.text if why else f"execve of {step.file.path} fails"
        return CapLoss(failed, step.file.path, Reason("chain-exec-fails", text), step.result.fixes)
    last_index = len(chain.steps) - 1
    last = chain.steps[last_index]
    final = last.result.creds
    if bit in final.effective:
        return None
    if bit in final.permitted:
        return CapLoss(
            last_index,
            last.file.path,
            Reason(
                "cap-not-effective",
                f"{name} is permitted but not effective when {last.file.path} runs: the program "
                "must raise it itself (capset), or its file needs the effective bit",
            ),
            (Fix("set the file effective bit", f"setcap {name}=ep {last.file.path}"),),
        )
    dropped = [
        i
        for i, step in enumerate(chain.steps)
        if bit in step.before.permitted and bit not in step.result.creds.permitted
    ]
    if dropped and dropped[-1] < last_index:
        i = dropped[-1]
        wrapper = chain.steps[i]
        why = _why(wrapper.result)
        cause = (
            "has no file capabilities and no ambient capability carries it"
            if why is None or why.code == "no-file-caps-nonroot"
            else f"loses it ({why.text})"
        )
        later = _why(last.result) if _file_offers(last.file, bit) else None
        then = (
            f"under no_new_privs the permitted set can only shrink, so {name} is not in the "
            f"permitted set when {last.file.path} runs"
            if later is not None and later.code == "nnp-dropped-caps"
            else f"nothing after it grants {name} again, so it is not in the permitted set when "
            f"{last.file.path} runs"
        )
        return CapLoss(
            i,
            wrapper.file.path,
            Reason(
                "cap-dropped-by-earlier-exec", f"the wrapper {wrapper.file.path} {cause}: {then}"
            ),
            (
                Fix(
                    f"exec {last.file.path} directly (exec-form ENTRYPOINT/command, no shell "
                    f"wrapper), or keep {name} across the wrapper as an ambient capability",
                ),
            ),
        )
    # Nothing held it at the end: the last exec is where it should have come from.
    why = _why(last.result)
    if _file_offers(last.file, bit) and why is not None:
        return CapLoss(last_index, last.file.path, why, last.result.fixes)
    held_before = bit in last.before.permitted
    text = f"{last.file.path} {'drops' if held_before else 'does not get'} {name}: " + (
        why.text
        if why is not None
        else f"it has no file capability for it and {name} is not ambient"
    )
    return CapLoss(
        last_index,
        last.file.path,
        Reason("cap-not-granted", text),
        (
            Fix(
                f"give {last.file.path} the file capability (and keep {name} in the bounding set)",
                f"setcap {name}=ep {last.file.path}",
            ),
        ),
    )
