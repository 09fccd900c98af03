"""lint answers for the newest kernel the model knows and says so when an answer depends on it
(issue 13): an exec chain that ends differently before Linux 6.17 adds an assumption."""

from __future__ import annotations

from unroot.model.caps import NET_BIND_SERVICE
from unroot.model.creds import Creds, Ids
from unroot.model.execve import ExecFile
from unroot.situation.build import Link, _run_chain
from unroot.sources.exec_argv import ChainLink


def _link(file: ExecFile) -> Link:
    link = ChainLink(file.path, "service")
    return Link(link, link.program, None, False, file)


def test_a_chain_that_depends_on_the_kernel_is_named() -> None:
    # ambient NET_BIND_SERVICE, a set-group-ID file of a supplementary group: from 6.17 the ids
    # did not "change" (in_group_p), so the ambient set survives; before, it is cleared.
    start = Creds(
        uid=Ids.same(1000),
        gid=Ids.same(1000),
        groups=frozenset({50}),
        inheritable=NET_BIND_SERVICE,
        permitted=NET_BIND_SERVICE,
        ambient=NET_BIND_SERVICE,
    )
    notes: list[str] = []
    chain, final = _run_chain(start, [_link(ExecFile("/srv/app", setgid_owner=50))], {}, notes)
    assert chain.ok
    assert final is not None
    assert final.ambient == NET_BIND_SERVICE
    assert len(notes) == 1
    assert "Linux 6.18" in notes[0]
    assert "337490f0007f" in notes[0]


def test_a_chain_that_does_not_depend_on_it_says_nothing() -> None:
    notes: list[str] = []
    _run_chain(Creds(), [_link(ExecFile("/srv/app"))], {}, notes)
    assert notes == []
