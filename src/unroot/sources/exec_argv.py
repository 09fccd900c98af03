"""The programs a container start executes, read from its ENTRYPOINT and CMD.

Docker runs ``ENTRYPOINT + CMD`` (or CMD alone); a shell-form instruction is ``/bin/sh -c TEXT``,
so a CMD after a shell-form ENTRYPOINT becomes ``$0 $1 …`` of that shell.  Most images do not
exec their service directly: a shell, an init (tini, dumb-init, s6-overlay's ``/init``), a
user-switching wrapper (gosu, su-exec) or an entrypoint script comes first.  Every one of them is
an execve, and each execve recomputes the capability sets (capabilities(7)): under no_new_privs an
uncapped wrapper empties the permitted set before the service's file capabilities are looked at.
:func:`exec_chain_argv` lists those execs in order as :class:`ChainLink` values for
:mod:`unroot.model.chain` to evaluate.

Unwrapping rules (``args`` are always the link's own arguments):

* ``sh -c 'SCRIPT' [NAME ARGS…]``: role "shell"; the service is the command ``exec``'d by the
  script, else its last top-level command (``set``, ``export``, ``cd``, ``mkdir``, ``chown`` … are
  skipped); ``exec "$@"`` continues with ARGS.  Without ``exec`` the shell stays as the parent
  (``replaces_parent=False`` on the next link) — the service is still exec'd by the shell.
* tini, dumb-init, catatonit, docker-init (``tini -s -- CMD``): role "init"; the service is its
  child.  s6-overlay's ``/init CMD``: role "init".
* gosu, su-exec, s6-setuidgid, setuidgid, ``chpst -u``, ``runuser -u``, ``sudo -u``,
  ``setpriv --reuid``: role "setuid-wrapper" with ``user`` = the target user; they exec in place.
* env, nice, ionice, stdbuf, taskset, setsid, nohup, timeout, ``setpriv``/``chpst`` without a user
  change: role "wrapper" (transparent, but an execve all the same).
* A script (``*.sh``, ``*entrypoint*``): role "shell" — its content is unknown; by the
  ``docker-entrypoint.sh`` convention it ends in ``exec "$@"``, so its arguments are the next
  link, unless the first one is an option (the script then picks the program itself: stop).
  The convention is the containers': for a systemd unit (``container=False``) the arguments
  are the next link only when the first is an absolute path (``frrinit.sh start`` is a verb).
* Anything else: role "service"; the chain ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from unroot.sources.shell import expand_word, parse_shell, shell_c_script

ROLES = ("shell", "init", "setuid-wrapper", "wrapper", "service")
MAX_LINKS = 16

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
#: init name → its options that take a value
_INITS: dict[str, frozenset[str]] = {
    "tini": frozenset({"-p", "-e", "-l"}),
    "tini-static": frozenset({"-p", "-e", "-l"}),
    "docker-init": frozenset({"-p", "-e", "-l"}),
    "dumb-init": frozenset({"-r", "--rewrite"}),
    "catatonit": frozenset(),
}
#: transparent wrapper → its options that take a value
_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "chrt": frozenset(),
    "numactl": frozenset(),
}
#: commands a shell script runs before its service; never the service themselves
_SETUP = frozenset(
    {
        "set",
        "export",
        "cd",
        "echo",
        "printf",
        "test",
        "[",
        "true",
        ":",
        "umask",
        "ulimit",
        "trap",
        "mkdir",
        "chown",
        "chmod",
        "rm",
        "sleep",
        "cp",
        "mv",
        "ln",
        "touch",
        "source",
        ".",
        "unset",
        "wait",
        "envsubst",
        "sed",
        "cat",
        "readonly",
        "local",
        "shift",
        "eval",
    }
)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One execve of the start sequence."""

    program: str  # as written: "/usr/bin/caddy", "caddy", "/bin/sh"
    role: str  # one of ROLES
    args: tuple[str, ...] = ()
    user: str | None = None  # setuid-wrapper: the user (and group) it switches to, as written
    replaces_parent: bool = True  # False: a shell/init forks it and stays as its parent
    #: setuid-wrapper: its options that take a value, as (name, value) in order
    #: (``("--ambient-caps", "+net_bind_service")``)
    options: tuple[tuple[str, str], ...] = ()


def exec_chain_argv(
    entrypoint: Sequence[str] | None, cmd: Sequence[str] | None, *, container: bool = True
) -> list[ChainLink]:
    """The execs Docker's ``ENTRYPOINT``/``CMD`` pair leads to, outermost first.
    ``container=False`` (a systemd unit's ``ExecStart=``): a script's arguments are the next
    command only when the first is an absolute path (init scripts take verbs: ``start``)."""
    argv = [*entrypoint, *(cmd or ())] if entrypoint else list(cmd or ())
    links: list[ChainLink] = []
    replaces = True
    while argv and len(links) < MAX_LINKS:
        program, args = argv[0], tuple(argv[1:])
        base = program.rsplit("/", 1)[-1]
        if base == "busybox" and args:
            program, args = args[0], args[1:]
            base = program.rsplit("/", 1)[-1]
        script = shell_c_script([program, *args]) if base in _SHELLS else None
        if script is not None:
            links.append(ChainLink(program, "shell", args, replaces_parent=replaces))
            text, positional = script
            nxt, replaces = _service_of_script(text, positional[:1], positional[1:])
            argv = list(nxt)
            continue
        if base in _SHELLS:  # `sh /entrypoint.sh ARGS`
            links.append(ChainLink(program, "shell", args, replaces_parent=replaces))
            first = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
            argv, replaces = _after_script(list(args[first + 1 :]), container), True
            continue
        if base in _INITS or program == "/init":
            links.append(ChainLink(program, "init", args, replaces_parent=replaces))
            argv, replaces = list(_after_options(args, _INITS.get(base, frozenset()))), False
            continue
        switched = _setuid_wrapper(base, args)
        if switched is not None:
            user, rest, options = switched
            links.append(ChainLink(program, "setuid-wrapper", args, user, replaces, options))
            argv, replaces = list(rest), True
            continue
        if base in _WRAPPERS or base in ("setpriv", "chpst"):
            links.append(ChainLink(program, "wrapper", args, replaces_parent=replaces))
            rest = _after_options(args, _WRAPPERS.get(base, frozenset()))
            if base == "env":
                rest = tuple(_drop_assignments(rest))
            elif base == "timeout":
                rest = rest[1:]  # the duration
            argv, replaces = list(rest), base != "timeout"
            continue
        if _is_script(base):
            links.append(ChainLink(program, "shell", args, replaces_parent=replaces))
            argv, replaces = _after_script(list(args), container), True
            continue
        links.append(ChainLink(program, "service", args, replaces_parent=replaces))
        break
    return links


def _is_script(base: str) -> bool:
    return base.endswith((".sh", ".bash")) or "entrypoint" in base.lower()


def _after_script(args: list[str], container: bool = True) -> list[str]:
    """By convention an entrypoint script ends in ``exec "$@"``; an option first means the
    script chooses the program itself (``if [ "${1#-}" != "$1" ]; then set -- nginx "$@"``).
    The convention is the containers'; elsewhere only an absolute path is taken as a program
    (``frrinit.sh start``: a verb)."""
    if not args or args[0].startswith("-"):
        return []
    if not container and not args[0].startswith("/"):
        return []
    return args


def _after_options(args: Sequence[str], with_value: frozenset[str]) -> tuple[str, ...]:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return tuple(args[i + 1 :])
        if not arg.startswith("-") or arg == "-":
            return tuple(args[i:])
        name = arg.split("=", 1)[0]
        i += 2 if name in with_value and "=" not in arg else 1
    return ()


def _drop_assignments(args: Sequence[str]) -> list[str]:
    rest = list(args)
    while rest and "=" in rest[0] and not rest[0].startswith("="):
        rest.pop(0)
    return rest


#: wrapper → (options that take a value, options whose value is the target user)
_USER_OPTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "chpst": (
        frozenset({"-u", "-U", "-e", "-/", "-n", "-l", "-L", "-m", "-d", "-o", "-p", "-f", "-c"}),
        frozenset({"-u"}),
    ),
    "runuser": (frozenset({"-u", "--user", "-g", "--group"}), frozenset({"-u", "--user"})),
    "sudo": (frozenset({"-u", "--user", "-g", "--group"}), frozenset({"-u", "--user"})),
    "setpriv": (
        frozenset(
            {
                "--reuid",
                "--ruid",
                "--euid",
                "--regid",
                "--rgid",
                "--egid",
                "--groups",
                "--inh-caps",
                "--ambient-caps",
                "--bounding-set",
                "--securebits",
                "--pdeathsig",
                "--selinux-label",
                "--apparmor-profile",
            }
        ),
        frozenset({"--reuid", "--ruid", "--euid"}),
    ),
}


def _scan_user_option(
    args: Sequence[str], takes_value: frozenset[str], user_flags: frozenset[str]
) -> tuple[str | None, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Walk a wrapper's options (``-u USER``, ``--user=USER``, ``--`` ends them): the last
    user named, the command after the options, and every option given a value."""
    user = None
    given: list[tuple[str, str]] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in takes_value and not eq and i + 1 < len(args):
            value = args[i + 1]
            i += 1
        if name in takes_value:
            given.append((name, value))
        if name in user_flags and value:
            user = value
        i += 1
    return user, tuple(args[i:]), tuple(given)


def _setuid_wrapper(
    base: str, args: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]] | None:
    """(target user, the command it execs, its valued options) for user-switching wrappers."""
    if base in ("gosu", "su-exec", "s6-setuidgid", "setuidgid"):
        if not args:
            return None
        return args[0], tuple(args[1:]), ()
    options = _USER_OPTIONS.get(base)
    if options is None:
        return None
    takes_value, user_flags = options
    user, rest, given = _scan_user_option(args, takes_value, user_flags)
    return (user, rest, given) if user else None


def _service_of_script(
    text: str, zero: tuple[str, ...], positional: tuple[str, ...]
) -> tuple[tuple[str, ...], bool]:
    """The argv a ``sh -c`` script runs as its service, and whether it ``exec``s it;
    ``zero`` is ``($0,)`` when given, ``positional`` are ``$1 …``."""
    parsed = parse_shell(text)
    top = [c for c in parsed.commands if not c.scope and not c.conditional and c.words]
    chosen = None
    exec_used = False
    for command in top:
        words = _expand(command.words, zero, positional)
        if words and words[0] == "exec" and len(words) > 1:
            chosen, exec_used = words[1:], True
            break
    if chosen is None:
        for command in reversed(top):
            words = _expand(command.words, zero, positional)
            while words and words[0] in ("command", "nohup"):
                words = words[1:]
            if words and words[0].rsplit("/", 1)[-1] not in _SETUP and words[0] != "exec":
                chosen = words
                break
    return (tuple(chosen) if chosen else ()), exec_used


def _expand(raws: Sequence[str], zero: tuple[str, ...], positional: tuple[str, ...]) -> list[str]:
    """Expand one command's words: ``"$@"``/``$*`` → the positional arguments, ``$0`` → the
    name, quotes removed, other variables left as written (they are runtime values)."""
    words: list[str] = []
    for raw in raws:
        if raw in ('"$@"', "$@", '"${@}"', "${@}", "$*", '"$*"'):
            words.extend(positional)
            continue
        if raw in ('"$0"', "$0", '"${0}"', "${0}") and zero:
            words.extend(zero)
            continue
        words.append(expand_word(raw, {}, positional=positional).text)
    return words
