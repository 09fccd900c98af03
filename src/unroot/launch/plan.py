"""The launch plan: ``unroot run``'s command line, parsed and checked, as one frozen value.

Pure: nothing here touches files, sockets, processes or syscalls. The user and group databases
come in through an :class:`Accounts` (``launch/accounts.py`` reads the system's), the caller's
own identity as an :class:`Invoker`. Everything that can be refused before a socket is bound is
refused here, as a :class:`~unroot.errors.UsageError` with one line of text.

Listen specs (``-l``/``--listen``) are parsed in :mod:`unroot.launch.listen`.

Values are plain frozen classes, not dataclasses: ``dataclasses`` imports ``inspect``, which
alone costs more launch latency than everything else ``unroot run`` does.
"""

from __future__ import annotations

from unroot.errors import UsageError
from unroot.launch.activation import SD_LISTEN_FDS_START
from unroot.launch.listen import (
    DIGITS,
    FDNAME_MAX,
    INT_MAX,
    Frozen,
    ListenSpec,
    _ipv6,
    parse_listen_spec,
)

__all__ = [
    "FDNAME_MAX",
    "SD_LISTEN_FDS_START",
    "ListenSpec",
    "_ipv6",
    "parse_listen_spec",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from unroot.model.caps import CapSet

LISTEN_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
#: What describes the invoking user's login session, not the service's: dropped when the user
#: changes (su(1) and runuser(1) reset HOME, SHELL, USER and LOGNAME; sudo's env_reset drops
#: these too). SUDO_* (which also names root's command line) goes with them.
SESSION_VARS = frozenset(
    {
        "MAIL",  # /var/mail/root
        "OLDPWD",
        "XDG_RUNTIME_DIR",  # /run/user/0: root's runtime directory
        "XDG_SESSION_ID",
        "XDG_SESSION_TYPE",
        "XDG_SESSION_CLASS",
        "DBUS_SESSION_BUS_ADDRESS",  # root's session bus
        "XAUTHORITY",
        "DISPLAY",
        "SSH_AUTH_SOCK",  # root's ssh agent
        "SSH_AGENT_PID",
        "SSH_CLIENT",
        "SSH_CONNECTION",
        "SSH_TTY",  # root's terminal
        "KRB5CCNAME",  # root's Kerberos credential cache
        "HISTFILE",
        "XDG_CONFIG_HOME",  # these four point into the invoking user's home
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
    }
)
#: Groups whose members hold root, or root's secrets, by another name (Debian's base-passwd
#: README: disk "mostly equivalent to root access", kmem reads kernel memory, shadow reads
#: /etc/shadow; Docker's post-install guide: the docker group "grants root-level privileges";
#: lxd and libvirt start privileged containers and VMs; sudo and wheel run anything as root
#: with a password). Keeping one is allowed, and said on stderr.
ROOT_EQUIVALENT_GROUPS = {
    "disk": "raw access to every disk",
    "kmem": "read kernel memory (/dev/mem, /dev/kmem, /dev/port)",
    "shadow": "read the password hashes in /etc/shadow",
    "docker": "the Docker API, which starts privileged containers",
    "lxd": "the LXD API, which starts privileged containers",
    "libvirt": "the libvirt API, which starts virtual machines with the host's disks",
    "sudo": "sudo, with a password",
    "wheel": "sudo, with a password",
}
RESTART_POLICIES = ("on-failure", "always", "never")
READY_PROBES = ("tcp", "notify", "none")
DEFAULT_RESTART = "on-failure"
DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
#: What --reload-signal may name: forwarded signals that do not also stop the supervisor.
RELOAD_SIGNALS = ("HUP", "USR1", "USR2", "WINCH")
DEFAULT_RELOAD_SIGNAL = 1  # SIGHUP
DEFAULT_STOP_SIGNAL = 15  # SIGTERM
ID_MAX = (1 << 32) - 2  # (uid_t)-1 means "unchanged" to set*id(2)


# -- identities ----------------------------------------------------------------------------------
class UserEntry(Frozen):
    """A passwd(5) entry as far as the launch needs it; ``name`` None for a bare number."""

    __slots__ = ("gid", "home", "name", "shell", "uid")
    name: str | None
    uid: int
    gid: int | None
    home: str | None
    shell: str | None

    def __init__(
        self,
        name: str | None,
        uid: int,
        gid: int | None,
        home: str | None,
        shell: str | None = None,
    ) -> None:
        self._init(name=name, uid=uid, gid=gid, home=home, shell=shell)


class Invoker(Frozen):
    """Who runs ``unroot run``: the real uid, gid and supplementary groups."""

    __slots__ = ("gid", "groups", "uid")
    uid: int
    gid: int
    groups: tuple[int, ...]

    def __init__(self, uid: int, gid: int, groups: Iterable[int]) -> None:
        self._init(uid=uid, gid=gid, groups=tuple(sorted(set(groups))))


class Accounts:
    """The user and group databases (passwd(5), group(5) through NSS). ``launch/accounts.py``
    answers from the system; tests subclass this with a table."""

    def user_by_name(self, name: str) -> UserEntry | None:
        raise NotImplementedError

    def user_by_uid(self, uid: int) -> UserEntry | None:
        raise NotImplementedError

    def group_by_name(self, name: str) -> int | None:
        raise NotImplementedError

    def grouplist(self, user: str, gid: int) -> tuple[int, ...]:
        """getgrouplist(3): ``gid`` and every group that lists ``user`` as a member."""
        raise NotImplementedError

    def group_name(self, gid: int) -> str | None:
        """getgrgid(3)'s name for ``gid``, or None (only warnings need it)."""
        return None


def _number(text: str) -> int | None:
    if text and set(text) <= DIGITS and len(text) <= 10:
        value = int(text)
        if value <= ID_MAX:
            return value
    return None


def resolve_user(key: str, accounts: Accounts) -> UserEntry:
    """``--user``: a name from the passwd database, or a number (with or without an entry)."""
    number = _number(key)
    if number is not None:
        return accounts.user_by_uid(number) or UserEntry(None, number, None, None)
    entry = accounts.user_by_name(key) if key else None
    if entry is None:
        raise UsageError(f"unknown user {key!r} (not in the passwd database)")
    return entry


def resolve_group(key: str, accounts: Accounts, what: str = "group") -> int:
    number = _number(key)
    if number is not None:
        return number
    gid = accounts.group_by_name(key) if key else None
    if gid is None:
        raise UsageError(f"unknown {what} {key!r} (not in the group database)")
    return gid


# -- {fd} substitution ---------------------------------------------------------------------------
def substitute_fds(
    template: Sequence[str], names: Sequence[str | None], first_fd: int = SD_LISTEN_FDS_START
) -> tuple[str, ...]:
    """The command with ``{fd}`` / ``{fd:NAME}`` replaced by fd numbers.

    A word that contains ``{fd}`` or ``{fd:`` is a template: there ``{fd}`` is the only socket's
    fd, ``{fd:NAME}`` the fd of the socket named NAME, and ``{{`` / ``}}`` stand for literal
    braces. Every other word passes through byte for byte (``'{{.Names}}'`` stays as it is).
    """
    return tuple(
        _fill(word, names, first_fd, "the command", f"the command word {word!r}")
        for word in template
    )


def substitute_env(
    assignments: Sequence[tuple[str, str]],
    names: Sequence[str | None],
    first_fd: int = SD_LISTEN_FDS_START,
) -> tuple[tuple[str, str], ...]:
    """The ``-E`` assignments with ``{fd}`` / ``{fd:NAME}`` in their values replaced, by the
    rules of :func:`substitute_fds` (for nginx: ``NGINX={fd:http};{fd:https};``)."""
    return tuple(
        (name, _fill(value, names, first_fd, f"-E {name}", f"-E {name + '=' + value!r}"))
        for name, value in assignments
    )


def _fill(word: str, names: Sequence[str | None], first_fd: int, owner: str, where: str) -> str:
    """One word of :func:`substitute_fds`; ``owner`` and ``where`` name it in errors."""
    if "{fd}" not in word and "{fd:" not in word:
        return word
    pieces, i = [], 0
    while i < len(word):
        if word.startswith(("{{", "}}"), i):
            pieces.append(word[i])
            i += 2
        elif word.startswith("{fd}", i):
            pieces.append(str(_only_fd(names, first_fd, owner)))
            i += 4
        elif word.startswith("{fd:", i):
            end = word.find("}", i)
            if end < 0:
                raise UsageError(f"unclosed {{fd:NAME}} in {where}")
            pieces.append(str(_named_fd(word[i + 4 : end], names, first_fd)))
            i = end + 1
        else:
            pieces.append(word[i])
            i += 1
    return "".join(pieces)


def _only_fd(names: Sequence[str | None], first_fd: int, owner: str) -> int:
    if len(names) == 1:
        return first_fd
    if not names:
        raise UsageError(f"{owner} uses {{fd}}, but there is no --listen")
    raise UsageError(
        f"{owner} uses {{fd}}, but there are {len(names)} sockets: name them "
        "(-l web=:80) and write {fd:web}"
    )


def _named_fd(name: str, names: Sequence[str | None], first_fd: int) -> int:
    hits = [index for index, have in enumerate(names) if have == name]
    if len(hits) == 1:
        return first_fd + hits[0]
    if hits:
        raise UsageError(f"{{fd:{name}}} is ambiguous: {len(hits)} sockets are named {name!r}")
    known = ", ".join(sorted({n for n in names if n})) or "none"
    raise UsageError(f"{{fd:{name}}}: no --listen is named {name!r} (names: {known})")


# -- the plan ------------------------------------------------------------------------------------
class LaunchPlan(Frozen):
    """Everything ``unroot run`` will do, decided before anything is done.

    ``uid``/``gid`` go into all of real, effective, saved and fs ids; ``groups`` is exactly the
    supplementary group list (sorted); ``keep_cap_mask`` the capabilities kept as ambient (the
    bounding set is cut down to them); ``nofile`` the RLIMIT_NOFILE (soft, hard), or None to raise
    the soft limit to the hard one; ``command`` the template, ``argv`` with ``{fd}`` replaced;
    ``env_set`` the ``-E`` assignments, ``{fd}`` already replaced (:func:`substitute_env`);
    ``user_name``/``home``/``shell`` fill USER, LOGNAME, HOME and SHELL when
    ``set_identity_env`` (the service's user is not unroot's); ``warnings`` are lines for stderr
    about what the plan allows (a kept capability that is root by another name).
    ``supervise``, ``restart``, ``ready``, ``ready_timeout``, ``reload_signal``,
    ``stop_signal`` and ``stop_timeout`` belong to launch/supervise.py.
    """

    __slots__ = (
        "allow_root",
        "argv",
        "command",
        "env_clear",
        "env_set",
        "gid",
        "groups",
        "home",
        "keep_cap_mask",
        "listens",
        "no_new_privs",
        "nofile",
        "ready",
        "ready_timeout",
        "reload_signal",
        "restart",
        "set_identity_env",
        "shell",
        "stop_signal",
        "stop_timeout",
        "supervise",
        "uid",
        "user_name",
        "warnings",
    )
    listens: tuple[ListenSpec, ...]
    uid: int
    gid: int
    groups: tuple[int, ...]
    user_name: str | None
    home: str | None
    shell: str | None
    set_identity_env: bool
    keep_cap_mask: int
    nofile: tuple[int, int] | None
    no_new_privs: bool
    allow_root: bool
    env_clear: bool
    env_set: tuple[tuple[str, str], ...]
    command: tuple[str, ...]
    argv: tuple[str, ...]
    supervise: bool
    restart: str
    ready: str
    ready_timeout: float
    reload_signal: int
    stop_signal: int
    stop_timeout: float
    warnings: tuple[str, ...]

    def __init__(
        self,
        *,
        listens: Iterable[ListenSpec],
        uid: int,
        gid: int,
        groups: Iterable[int],
        command: Sequence[str],
        user_name: str | None = None,
        home: str | None = None,
        shell: str | None = None,
        set_identity_env: bool = False,
        keep_cap_mask: int = 0,
        nofile: tuple[int, int] | None = None,
        no_new_privs: bool = True,
        allow_root: bool = False,
        env_clear: bool = False,
        env_set: Iterable[tuple[str, str]] = (),
        argv: Sequence[str] | None = None,
        supervise: bool = False,
        restart: str = DEFAULT_RESTART,
        ready: str = "none",
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        reload_signal: int = DEFAULT_RELOAD_SIGNAL,
        stop_signal: int = DEFAULT_STOP_SIGNAL,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        warnings: Iterable[str] = (),
    ) -> None:
        listens = tuple(listens)
        command = tuple(command)
        if argv is None:
            argv = substitute_fds(command, [spec.name for spec in listens])
        self._init(
            listens=listens,
            uid=uid,
            gid=gid,
            groups=tuple(sorted(set(groups))),
            user_name=user_name,
            home=home,
            shell=shell,
            set_identity_env=set_identity_env,
            keep_cap_mask=keep_cap_mask,
            nofile=nofile,
            no_new_privs=no_new_privs,
            allow_root=allow_root,
            env_clear=env_clear,
            env_set=tuple(env_set),
            command=command,
            argv=tuple(argv),
            supervise=supervise,
            restart=restart,
            ready=ready,
            ready_timeout=ready_timeout,
            reload_signal=reload_signal,
            stop_signal=stop_signal,
            stop_timeout=stop_timeout,
            warnings=tuple(warnings),
        )

    @property
    def keep_caps(self) -> CapSet:
        from unroot.model.caps import CapSet  # lazily: dataclasses stay off the exec path

        return CapSet(self.keep_cap_mask)

    def fd_names(self) -> tuple[str, ...]:
        """One name per socket, ``unknown`` where none was given (sd_listen_fds_with_names)."""
        return tuple(spec.name or "unknown" for spec in self.listens)

    def listen_environment(self, pid: int) -> dict[str, str]:
        """LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES for the process ``pid``."""
        return listen_environment(self.listens, pid)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The service's environment without LISTEN_*: ``base`` (or nothing with
        ``--env-clear``); when the user changes, without what describes the invoking user's
        session (:data:`SESSION_VARS`) and with USER, LOGNAME, HOME and SHELL of the target (as
        su(1), runuser(1) and systemd's ``User=`` set them; a uid without a passwd entry gets
        HOME=/ and no USER, LOGNAME or SHELL); then every ``-E`` (with ``{fd}`` replaced)."""
        env = {} if self.env_clear else dict(base)
        for key in LISTEN_VARS:
            env.pop(key, None)
        if self.set_identity_env:
            for key in list(env):
                if key in SESSION_VARS or key.startswith("SUDO_"):
                    del env[key]
            identity = {
                "USER": self.user_name,
                "LOGNAME": self.user_name,
                "HOME": (self.home or "/") if self.user_name is not None else "/",
                "SHELL": (self.shell or "/bin/sh") if self.user_name is not None else None,
            }
            for key, value in identity.items():
                if value is None:
                    env.pop(key, None)
                else:
                    env[key] = value
        env.update(self.env_set)
        return env


def listen_environment(specs: Sequence[ListenSpec], pid: int) -> dict[str, str]:
    """LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES for the process ``pid``, whose fds 3.. are
    ``specs`` in order; nothing when there is no socket.

    LISTEN_FDNAMES is always set, ``unknown`` standing for an unnamed socket — what systemd's
    socket units do, and what sd_listen_fds_with_names(3) reports for a missing name anyway.
    (systemd-socket-activate leaves it out without --fdname; Twisted's ``systemd:`` endpoint
    then finds no socket at all.)
    """
    if not specs:
        return {}
    return {
        "LISTEN_FDS": str(len(specs)),
        "LISTEN_PID": str(pid),
        "LISTEN_FDNAMES": ":".join(spec.name or "unknown" for spec in specs),
    }


def parse_nofile(text: str) -> tuple[int, int]:
    """``--nofile N`` (soft and hard, like ``ulimit -n`` and LimitNOFILE=) or ``SOFT:HARD``."""
    soft_text, colon, hard_text = text.partition(":")
    values = []
    for part in (soft_text, hard_text if colon else soft_text):
        if not part or not set(part) <= DIGITS or len(part) > 10 or int(part) > INT_MAX:
            raise UsageError(f"--nofile {text!r}: expected SOFT or SOFT:HARD, numbers")
        values.append(int(part))
    soft, hard = values
    if soft > hard:
        raise UsageError(f"--nofile {text!r}: the soft limit is above the hard limit")
    return soft, hard


def parse_env_assignment(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name or "\0" in text:
        raise UsageError(f"-E {text!r}: expected NAME=VALUE")
    if name in LISTEN_VARS:
        raise UsageError(f"-E {name}: unroot sets {name} itself")
    return name, value


def make_plan(
    *,
    accounts: Accounts,
    invoker: Invoker,
    command: Sequence[str],
    listen: Sequence[str] = (),
    user: str | None = None,
    group: str | None = None,
    groups: str | None = None,
    no_groups: bool = False,
    keep_caps: Sequence[str] = (),
    nofile: str | None = None,
    allow_new_privs: bool = False,
    allow_root: bool = False,
    supervise: bool = False,
    restart: str | None = None,
    ready: str | None = None,
    ready_timeout: str | float | None = None,
    reload_signal: str | None = None,
    stop_signal: str | None = None,
    stop_timeout: str | float | None = None,
    env_clear: bool = False,
    env: Sequence[str] = (),
) -> LaunchPlan:
    """Check ``unroot run``'s options and decide the launch; UsageError for anything wrong."""
    if not command or not command[0]:
        raise UsageError("no command: unroot run [OPTIONS] -- COMMAND [ARG...]")
    specs = [parse_listen_spec(text) for text in listen]
    _check_duplicates(specs)
    names = [spec.name for spec in specs]
    argv = substitute_fds(command, names)
    env_set = substitute_env([parse_env_assignment(item) for item in env], names)

    # who: --user, --group, --groups / --no-groups
    if groups is not None and no_groups:
        raise UsageError("--groups and --no-groups exclude each other")
    entry: UserEntry | None
    if user is not None:
        entry = resolve_user(user, accounts)
    elif invoker.uid == 0:
        if not allow_root:
            raise UsageError(
                "unroot run is running as root: pass --user USER to say whom the service runs "
                "as (or --allow-root to keep uid 0)"
            )
        entry = resolve_user("0", accounts)
    else:
        entry = None
    if entry is None:
        uid, name, home, shell = invoker.uid, None, None, None
        gid = invoker.gid
    else:
        uid, name, home, shell = entry.uid, entry.name, entry.home, entry.shell
        if entry.gid is None and group is None:
            raise UsageError(f"uid {uid} has no passwd entry: pass --group to give its gid")
        gid = entry.gid if entry.gid is not None else invoker.gid
    if group is not None:
        gid = resolve_group(group, accounts)
    if uid == 0 and not allow_root:
        raise UsageError(
            "refusing to run the service as root (uid 0): pass --user with an unprivileged "
            "user, or --allow-root"
        )
    if no_groups:
        supplementary: tuple[int, ...] = ()
    elif groups is not None:
        items = groups.split(",")
        if not all(items):
            raise UsageError(f"--groups {groups!r}: expected G1,G2 (names or numbers)")
        supplementary = tuple(resolve_group(item, accounts) for item in items)
    elif entry is None:
        supplementary = invoker.groups
    elif name is not None:
        supplementary = accounts.grouplist(name, gid)
    else:
        supplementary = (gid,)
    if not allow_root and (entry is not None or group is not None or groups is not None):
        _refuse_root_group(gid, supplementary, group, groups, name or f"uid {uid}")

    keep_mask = 0
    warnings = []
    if keep_caps:
        from unroot.model.caps import ROOT_EQUIVALENT, CapSet  # lazily: only with --keep-cap

        kept = CapSet.parse(list(keep_caps))
        keep_mask = kept.mask
        for cap in kept.names():
            if cap in ROOT_EQUIVALENT:
                cite = "" if "capabilities(7)" in ROOT_EQUIVALENT[cap] else " (capabilities(7))"
                warnings.append(
                    f"--keep-cap {cap} is root by another name: the service can "
                    f"{ROOT_EQUIVALENT[cap]}{cite}"
                )
    for member in sorted({gid, *supplementary}):
        group_name = accounts.group_name(member) if uid != invoker.uid else None
        if group_name in ROOT_EQUIVALENT_GROUPS:
            warnings.append(
                f"group {group_name} ({member}) is root by another name: the service gets "
                f"{ROOT_EQUIVALENT_GROUPS[group_name]}"
            )

    nofile_limits = parse_nofile(nofile) if nofile is not None else None
    if nofile_limits is not None and nofile_limits[0] < SD_LISTEN_FDS_START + len(specs):
        raise UsageError(
            f"--nofile {nofile}: the service needs fds 0..{SD_LISTEN_FDS_START + len(specs) - 1}"
        )

    resolved = [_resolve_owner(spec, accounts) for spec in specs]
    restart_policy, ready_probe, timeout = _supervise_options(
        supervise, restart, ready, ready_timeout, resolved
    )
    signals = _signal_options(supervise, reload_signal, stop_signal, stop_timeout)
    return LaunchPlan(
        listens=resolved,
        uid=uid,
        gid=gid,
        groups=supplementary,
        user_name=name,
        home=home,
        shell=shell,
        set_identity_env=uid != invoker.uid,
        keep_cap_mask=keep_mask,
        nofile=nofile_limits,
        no_new_privs=not allow_new_privs,
        allow_root=allow_root,
        env_clear=env_clear,
        env_set=env_set,
        command=command,
        argv=argv,
        supervise=supervise,
        restart=restart_policy,
        ready=ready_probe,
        ready_timeout=timeout,
        reload_signal=signals[0],
        stop_signal=signals[1],
        stop_timeout=signals[2],
        warnings=warnings,
    )


def _refuse_root_group(
    gid: int,
    supplementary: Sequence[int],
    group: str | None,
    groups: str | None,
    who: str,
) -> None:
    """gid 0 is root's group: it owns and may write much of what root owns (/etc, the boot
    files, often /var/log). Refused like uid 0, wherever it comes from, unless --allow-root."""
    if gid == 0:
        where = f"--group {group}" if group is not None else f"the primary group of {who}"
        raise UsageError(
            f"refusing to run the service with gid 0 (root's group) from {where}: pass "
            "--group with an unprivileged group, or --allow-root"
        )
    if 0 in supplementary:
        where = f"--groups {groups}" if groups is not None else f"{who}'s groups"
        raise UsageError(
            f"refusing to give the service group 0 (root's group) from {where}: pass --groups "
            "without it or --no-groups, or --allow-root"
        )


def _check_duplicates(specs: Sequence[ListenSpec]) -> None:
    seen: dict[tuple[object, ...], str] = {}
    for spec in specs:
        key = (spec.transport, spec.family, spec.host, spec.port, spec.path)
        if spec.port == 0 and spec.transport != "unix":
            continue  # each asks the kernel for its own free port
        if key in seen:
            raise UsageError(f"--listen {spec.text!r} repeats --listen {seen[key]!r}")
        seen[key] = spec.text


def _resolve_owner(spec: ListenSpec, accounts: Accounts) -> ListenSpec:
    if spec.owner is None:
        return spec
    entry = resolve_user(spec.owner, accounts)
    gid = resolve_group(spec.group, accounts) if spec.group is not None else entry.gid
    return spec.replace(owner_uid=entry.uid, owner_gid=gid)


def parse_signal(text: str) -> int:
    """``HUP``, ``SIGHUP``, ``sighup`` or ``1`` → 1; ValueError for anything else."""
    import _signal  # type: ignore[import-not-found]  # the C module: ``signal`` imports enum

    if text.isdigit():
        number = int(text)
        if 0 < number < _signal.NSIG:
            return number
        raise ValueError(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    value = getattr(_signal, name, None) if name.isalnum() and "_" not in name else None
    if not isinstance(value, int) or value <= 0:
        raise ValueError(text)
    return value


def _signal_options(
    supervise: bool,
    reload_signal: str | None,
    stop_signal: str | None,
    stop_timeout: str | float | None,
) -> tuple[int, int, float]:
    given = (("--reload-signal", reload_signal), ("--stop-signal", stop_signal))
    for flag, value in (*given, ("--stop-timeout", stop_timeout)):
        if value is not None and not supervise:
            raise UsageError(f"{flag} needs --supervise")
    numbers = []
    for (flag, value), default in zip(
        given, (DEFAULT_RELOAD_SIGNAL, DEFAULT_STOP_SIGNAL), strict=True
    ):
        if value is None:
            numbers.append(default)
            continue
        try:
            numbers.append(parse_signal(value))
        except ValueError:
            raise UsageError(f"{flag} {value!r}: not a signal name or number") from None
    if reload_signal is not None:
        allowed = {parse_signal(name): name for name in RELOAD_SIGNALS}
        if numbers[0] not in allowed:
            raise UsageError(
                f"--reload-signal {reload_signal!r}: one of {', '.join(RELOAD_SIGNALS)} "
                "(TERM, INT and QUIT stop the supervisor)"
            )
    timeout = _seconds("--stop-timeout", stop_timeout, DEFAULT_STOP_TIMEOUT)
    return numbers[0], numbers[1], timeout


def _seconds(flag: str, value: str | float | None, default: float) -> float:
    """A duration flag: 0 < SECONDS < one day (nan and inf refused), or ``default``."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r}: expected seconds") from None
    if not 0 < seconds < 86400:
        raise UsageError(f"{flag} {value!r}: expected 0 < SECONDS < 86400")
    return seconds


def _supervise_options(
    supervise: bool,
    restart: str | None,
    ready: str | None,
    ready_timeout: str | float | None,
    specs: Sequence[ListenSpec],
) -> tuple[str, str, float]:
    if not supervise:
        for flag, value in (
            ("--restart", restart),
            ("--ready", ready),
            ("--ready-timeout", ready_timeout),
        ):
            if value is not None:
                raise UsageError(f"{flag} needs --supervise")
    if restart is not None and restart not in RESTART_POLICIES:
        raise UsageError(f"--restart {restart!r}: one of {', '.join(RESTART_POLICIES)}")
    if ready is not None and ready not in READY_PROBES:
        raise UsageError(f"--ready {ready!r}: one of {', '.join(READY_PROBES)}")
    has_stream = any(spec.stream for spec in specs)
    if ready == "tcp" and not has_stream:
        raise UsageError("--ready tcp needs a stream socket (tcp or unix --listen) to wait on")
    timeout = _seconds("--ready-timeout", ready_timeout, DEFAULT_READY_TIMEOUT)
    default_ready = "tcp" if has_stream else "none"
    return restart or DEFAULT_RESTART, ready or default_ready, timeout
