"""``unroot doctor --apply``: each failing check's narrowest fix that unroot can perform, as
actions, applied after the journal, and every check asked again.

For each failing check the first fix (they are ranked narrowest first) whose steps are all in
the vocabulary is taken: the model's ``setfacl``/``chgrp``/``chmod``, ``setcap``, ``groupadd``,
``unroot:sysctl`` (the drop-in and the running value) and ``unroot:restart`` (only with
``--restart``).  A read of a certbot lineage's file gets the renewal-proof plan of
:mod:`.keystore` instead of the bare ACL entries; its deploy hook is created only with
``hook=True``.  The same command asked by two checks is performed once.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from typing import Any

from unroot.errors import EnvironmentProblem, UnrootError
from unroot.model.verdict import Fix

from .actions import Action, Groupadd, Restart, SetAcl, SysctlDropIn, SystemdDropIn, from_argv
from .apply import apply
from .checks import Check
from .diagnose import Report, Request, diagnose
from .engines import RESTART
from .host import Host
from .keystore import KeystorePlan, certbot_plan


def _restart(shown: str) -> None:
    try:
        done = subprocess.run(
            shlex.split(shown), capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"cannot run {shown}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise EnvironmentProblem(f"{shown} failed: {last[-1]}")


def action_of(step: Sequence[str], *, restart: bool = False) -> Action | None:
    """One fix step as an action; None for a restart without ``restart`` (not performed).
    A step outside the vocabulary is a UsageError (from :func:`.actions.from_argv`)."""
    head = step[0] if step else ""
    if head == "groupadd" and len(step) == 4 and step[1] == "-g" and step[2].isdigit():
        return Groupadd(step[3], int(step[2]))
    if head == "unroot:sysctl" and len(step) == 3 and step[2].isdigit():
        return SysctlDropIn(int(step[2]), slug="unprivileged-port-start")
    if head == "unroot:systemd-drop-in" and len(step) == 4:
        user = "/systemd/user/" in step[1]  # a user unit's drop-in: systemctl --user reloads
        return SystemdDropIn(step[1], ((step[2], step[3]),), user=user)
    if head == "unroot:restart" and len(step) == 3 and step[2] in RESTART:
        if not restart:
            return None
        shown = RESTART[step[2]].format(owner=shlex.quote(step[1]))
        return Restart(f"{step[1]}'s rootless {step[2]}", shown, lambda: _restart(shown))
    return from_argv(step)


def _performable(fix: Fix) -> bool:
    if not fix.steps:
        return False
    try:
        for step in fix.steps:
            action_of(step, restart=True)
    except UnrootError:  # a step unroot cannot perform disqualifies the fix
        return False
    return True


def keystore_plan(check: Check, actions: Sequence[Action]) -> KeystorePlan | None:
    """The certbot plan for a read check whose fix grants ACL entries, if it is in a lineage."""
    acl = [a for a in actions if isinstance(a, SetAcl)]
    if (
        check.kind != "read"
        or not acl
        or len(acl) != sum(1 for a in actions if not isinstance(a, Groupadd))
    ):
        return None
    return certbot_plan(check.subject, os.path.realpath(check.subject), acl)


def keystore_plans(report: Report) -> list[KeystorePlan]:
    """The certbot plans ``--apply`` would use, for showing their deploy hooks (``plan.hook``:
    its path, ``why`` and ``content``) whether or not they are created."""
    found: dict[str, KeystorePlan] = {}
    for check in report.checks:
        if check.allowed is not False or check.verdict is None:
            continue
        fix = next((f for f in check.verdict.fixes if _performable(f)), None)
        if fix is not None:
            actions = [a for s in fix.steps if (a := action_of(s)) is not None]
            store = keystore_plan(check, actions)
            if store is not None:
                found.setdefault(store.hook.path, store)
    return list(found.values())


def show_keystore_plans(report: Report) -> Report:
    """The report with each certbot lineage's renewal-proof plan shown as the first fix of its
    read check (what ``--fix`` prints and ``--apply`` performs), and the deploy hook after it."""
    from dataclasses import replace

    checks = []
    for check in report.checks:
        verdict = check.verdict
        store = None
        if check.allowed is False and verdict is not None:
            fix = next((f for f in verdict.fixes if _performable(f)), None)
            if fix is not None:
                actions = [a for s in fix.steps if (a := action_of(s)) is not None]
                store = keystore_plan(check, actions)
                groups = [a.command for a in actions if isinstance(a, Groupadd)]
        if store is None or verdict is None:
            checks.append(check)
            continue
        plan_fix = Fix(
            f"certbot lineage {store.lineage.name}: grant exactly what the lookup needs with ACL "
            f"entries, and keep it across renewals — {'; '.join(store.notes)}",
            " && ".join([*groups, *(a.command for a in store.actions)]),
        )
        hook_fix = Fix(f"{store.hook.why} (created by --apply --deploy-hook)", store.hook.command)
        verdict = replace(verdict, fixes=(plan_fix, hook_fix, *verdict.fixes))
        checks.append(replace(check, verdict=verdict))
    report.checks = checks
    return report


def plan(report: Report, *, restart: bool = False, hook: bool = False) -> list[Action]:
    """The actions ``--apply`` performs for ``report``'s failing checks, in order, once each."""
    chosen: dict[str, Action] = {}
    for check in report.checks:
        if check.allowed is not False or check.verdict is None:
            continue
        fix = next((f for f in check.verdict.fixes if _performable(f)), None)
        if fix is None:
            continue
        actions = [a for s in fix.steps if (a := action_of(s, restart=restart)) is not None]
        store = keystore_plan(check, actions)
        if store is not None:
            groups = [a for a in actions if isinstance(a, Groupadd)]
            actions = [*groups, *(store.with_hook() if hook else store.actions)]
        for action in actions:
            chosen.setdefault(action.command, action)
    return list(chosen.values())


def apply_report(
    report: Report,
    request: Request,
    host: Host,
    *,
    restart: bool = False,
    hook: bool = False,
    journal_dir: str | None = None,
) -> tuple[list[dict[str, str]], str | None, Report]:
    """Apply :func:`plan` (journal first), then diagnose again with fresh facts: the rows of
    what was done (``kind``, ``command``, ``why``, ``status``), the journal (None: nothing
    changed), the new report."""
    actions = plan(report, restart=restart, hook=hook)
    if not actions:
        return [], None, report
    done = apply(actions, journal_dir=journal_dir)
    rows: list[dict[str, Any]] = done.to_json()
    return rows, done.journal, diagnose(request, Host(host.procfs))  # fresh facts, no cache
