"""User switches between execs (gosu, setpriv) — capabilities(7) "Effect of user ID changes"."""

from __future__ import annotations

from functools import partial

from unroot.model.caps import CapSet
from unroot.model.chain import exec_chain
from unroot.model.creds import Creds
from unroot.model.execve import ExecFile
from unroot.model.runtimes import DOCKER, start_creds
from unroot.model.setid import apply_cap_edit, setpriv_switch, setuid_switch

NBS = CapSet.of("cap_net_bind_service")
GOSU = ExecFile("/usr/local/bin/gosu")
SERVER = ExecFile("/usr/bin/server")


def root() -> Creds:
    return start_creds(DOCKER, 0, 0)


def test_setuid_to_nonroot_clears_permitted_effective_ambient() -> None:
    after = setuid_switch(root(), 1000, 1000, (1000, 27))
    assert (after.uid.effective, after.gid.effective, after.groups) == (1000, 1000, {1000, 27})
    assert after.permitted == after.effective == after.ambient == CapSet()
    assert after.bounding == root().bounding


def test_setuid_to_root_keeps_capabilities() -> None:
    assert setuid_switch(root(), 0, 0).permitted == root().permitted


def test_switch_by_nonroot_changes_nothing() -> None:
    user = setuid_switch(root(), 1000, 1000)
    assert setuid_switch(user, 2000, 2000) == user


def test_setpriv_keeps_caps_and_raises_ambient() -> None:
    after = setpriv_switch(
        root(), 1000, 1000, inh_caps="+net_bind_service", ambient_caps="+net_bind_service"
    )
    assert after.uid.effective == 1000
    assert after.ambient == NBS
    assert after.effective == root().permitted


def test_setpriv_ambient_needs_inheritable() -> None:
    assert setpriv_switch(root(), 1000, 1000, ambient_caps="+net_bind_service").ambient == CapSet()


def test_cap_edit_lists() -> None:
    assert apply_cap_edit(NBS, "-all,+chown") == CapSet.of("cap_chown")
    assert apply_cap_edit(NBS, "+teleport") == NBS  # setpriv refuses; the model does not guess
    assert apply_cap_edit(NBS, "net_raw") == NBS
    assert apply_cap_edit(NBS, None) == NBS


def test_chain_switch_applies_before_the_next_exec() -> None:
    switch = partial(setuid_switch, uid=1000, gid=1000)
    chain = exec_chain(root(), [GOSU, SERVER], switches={0: switch})
    assert chain.ok
    assert chain.steps[0].after is not None
    assert chain.steps[1].before == chain.steps[0].after
    assert chain.final.uid.effective == 1000
    assert chain.final.permitted == CapSet()


def test_chain_switch_after_the_last_exec_is_the_final_state() -> None:
    chain = exec_chain(root(), [GOSU], switches={0: partial(setuid_switch, uid=7, gid=7)})
    assert chain.final.uid.effective == 7
