"""The error messages ``unroot doctor --error`` recognises: one table, text in, matches out.

:func:`recognise` reads a pasted message or a whole log (ANSI colours, CRLF, docker-compose's
``ERROR: for svc`` prefixes, repeated lines) and returns what it recognised, once per question,
in order of first appearance.  Each :class:`Match` says which entry of :data:`PATTERNS`
matched, on which line, what the kernel refused, where the text comes from, and the
:class:`Ask` doctor turns into checks (ports, paths, the executable, open-file limits, the
engine, the subordinate ids).

Everything about a message lives in its :class:`Pattern` entry: adding a message is adding one
entry.  Reading stays linear in the text: an entry's regex is searched only in a bounded window
around the first few occurrences of one of its ``needles`` (found with ``str.find``), and every
repetition in a regex is bounded, so a 1 MB line or a 16 MiB log costs a few ``find`` calls
per line and entry.

Pure: no I/O.

Sources of the messages (cited, not copied):

* ``rootless-docker-privileged-port``: rootless-containers/rootlesskit
  ``pkg/port/builtin/parent/parent.go`` ``annotateEPERM`` ("you can add '…=N'", since v0.11.1;
  "you might need to add \\"…=0\\"" in v0.10.0 to v0.11.0; the setcap clause only when argv[0] is
  ``rootlesskit``), wrapped by moby/moby's userland proxy ("Error starting userland proxy:
  error while calling PortManager.AddPort()") when dockerd runs under rootlesskit.
* ``rootless-podman-privileged-port``: the same rootlesskit builtin parent driver run by
  containers/podman ``pkg/rootlessport`` (argv[0] is not rootlesskit: no setcap clause), which
  libpod prefixes with ``rootlessport``.
* ``runc-exec-eperm``: opencontainers/runc ``libcontainer/standard_init_linux.go`` — v1.0.x
  ``newSystemErrorWithCause(err, "exec user process")`` (``standard_init_linux.go:228: exec
  user process caused: operation not permitted``); v1.1+ ``system.Exec`` /
  ``internal/linux.Exec``: ``&os.PathError{Op: "exec"}`` (``exec /usr/bin/caddy: operation not
  permitted``), which ``container_linux.go`` wraps as "unable to start container process".
* ``runc-exec-eacces``: runc's ``exec.LookPath`` before the exec, golang/go ``os/exec``
  ``exec.Error`` ("exec: \"/etc/passwd\": permission denied", with ``stat PATH:`` when a
  directory is not searchable).
* ``crun-exec-eperm``: containers/crun ``src/libcrun/container.c`` ("exec container process
  `%s`", with strerror).
* ``apache-bind-eacces``: apache/httpd ``server/listen.c`` ``make_sock()`` APLOGNO(00072)
  "make_sock: could not bind to address %pI", after APR's "(13)Permission denied".
* ``go-bind-eacces``: golang/go ``net`` (``OpError`` "listen tcp :80: bind: permission denied";
  caddy's "listening on :80: " prefix, caddyserver/caddy ``modules/caddyhttp/app.go`` Start).
* ``nginx-bind-eacces``, ``nginx-path-eacces``: nginx/nginx ``src/core/ngx_connection.c``
  ("bind() to %V failed"), ``src/core/ngx_cycle.c`` / ``ngx_files.h`` ("open() \\"%s\\" failed"),
  errors logged as "(13: Permission denied)".
* ``python-bind-eacces``, ``python-path-eacces``, ``python-asyncio-bind-eacces``: CPython's
  ``OSError.__str__`` ("[Errno 13] Permission denied: 'path'"), ``Lib/asyncio/base_events.py``
  ``create_server`` ("error while attempting to bind on address %r: %s").
* ``too-many-open-files``: strerror(EMFILE) (glibc "Too many open files", Go's ``syscall``
  "too many open files"), nginx's "accept4() failed (24: Too many open files)".
* ``shim-too-many-open-files``: containerd/containerd ``runtime/v2`` ("failed to start shim:
  %w") around Go's ``fork/exec PATH: too many open files``.
* ``path-eacces``: coreutils and shells, "PROG: PATH: Permission denied" (bash
  ``cd: live: Permission denied``, ``cat``), GNU's quoted form "cannot open 'PATH'".
* ``go-path-eacces``: golang/go ``os.PathError`` ("open /etc/ssl/private/key.pem: permission
  denied").
* ``newuidmap-caps``, ``uid-map-write-failed``, ``subid-range-not-allowed``: shadow-maint/shadow
  ``lib/idmapping.c`` ("%s: Could not set caps", "%s: write to %s failed" with strerror) and
  ``src/newuidmap.c`` / ``src/newgidmap.c`` ("%s: uid range [%lu-%lu) -> [%lu-%lu) not
  allowed").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

Engine = Literal["docker", "podman"]
#: Lines of a Python traceback searched for the ``bind(...)`` call before its last line.
TRACEBACK_WINDOW = 12
#: A matched line longer than this is shown as the part around the match.
LINE_MAX = 1000
#: Occurrences of a needle tried per line and entry (a real line holds a message once or twice).
TRIES = 4
#: How far after ``context_needle`` a context regex may reach.
CONTEXT_AFTER = 600


@dataclass(frozen=True, slots=True)
class Ask:
    """What doctor should ask next.

    ``ports`` (with ``proto``): the ports the message says could not be bound.  ``paths``: each
    path as the message writes it (relative when it is: ``cd: live`` → ``live``), opened with
    ``want`` (``r``, ``w`` or ``x``; ``x`` for a directory searched or a file executed).
    ``exe``: the program an exec was refused.  ``nofile``: ask about open-file limits.
    ``engine``/``rootless``: the engine the message proves (``rootless`` only when it proves
    that too).  ``subuid``: ask about /etc/subuid, /etc/subgid and newuidmap's privilege.
    """

    ports: tuple[int, ...] = ()
    proto: str = "tcp"
    paths: tuple[str, ...] = ()
    want: str = ""
    exe: str | None = None
    nofile: bool = False
    engine: Engine | None = None
    rootless: bool = False
    subuid: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """One recognised message: the entry's id, the line it was found on (trimmed), what it
    means, where its text comes from, the errno it reports and what to ask next."""

    pattern: str
    line: str
    meaning: str
    source: str
    errno: str
    asks: Ask


Groups = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Pattern:
    """One message.

    ``needles``: lower-case substrings, one of which every match contains.  ``regex``: searched
    on the line (ANSI codes and outer blanks removed) from ``before`` characters before a
    needle to ``after`` characters after it, for the first :data:`TRIES` occurrences of each
    needle.  ``ends_line``: the match must end the line.  ``ask``: the named groups → the
    :class:`Ask`.  ``context``: for messages that need an earlier line (a traceback's
    ``bind(...)`` call), a regex starting with the literal ``context_needle`` that one of the
    previous :data:`TRACEBACK_WINDOW` lines must match; its named groups join the match's.
    ``hides``: ids of less specific entries not reported for a line this one matched.
    """

    id: str
    needles: tuple[str, ...]
    before: int
    after: int
    regex: re.Pattern[str]
    meaning: str
    source: str
    errno: str
    ask: Callable[[Groups], Ask]
    ends_line: bool = False
    context: re.Pattern[str] | None = None
    context_needle: str = ""
    hides: frozenset[str] = frozenset()


def _port(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    value = int(text)
    return (value,) if 0 < value <= 65535 else ()


def _proto(text: str | None) -> str:
    return "udp" if text is not None and text.lower().startswith("udp") else "tcp"


def _rootless(engine: Engine) -> Callable[[Groups], Ask]:
    def ask(g: Groups) -> Ask:
        return Ask(ports=_port(g["port"]), proto=_proto(g["proto"]), engine=engine, rootless=True)

    return ask


def _bind(g: Groups) -> Ask:
    return Ask(ports=_port(g.get("port")), proto=_proto(g.get("proto")))


def _path(want: str) -> Callable[[Groups], Ask]:
    def ask(g: Groups) -> Ask:
        path = g.get("path") or g.get("qpath")
        return Ask(paths=(path,) if path else (), want=want)

    return ask


#: Programs whose "PROG: PATH: Permission denied" is about executing or searching PATH.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "busybox", "cd", "env", "exec"})


def _coreutils_path(g: Groups) -> Ask:
    path = g.get("path") or g.get("qpath")
    searched = g.get("cd") is not None or (g.get("prog") or "") in _SHELLS
    return Ask(paths=(path,) if path else (), want="x" if searched else "r")


def _go_path(g: Groups) -> Ask:
    path = g.get("path")
    return Ask(
        paths=(path,) if path else (),
        want="w" if g.get("op") in {"mkdir", "remove", "rename"} else "r",
    )


def _exec_path(g: Groups) -> Ask:
    exe = g.get("exe")
    return Ask(paths=(exe,) if exe else (), want="x", exe=exe)


def _exe(g: Groups) -> Ask:
    return Ask(exe=g.get("exe"))


def _nofile(_g: Groups) -> Ask:
    return Ask(nofile=True)


def _subuid(_g: Groups) -> Ask:
    return Ask(subuid=True)


def _p(regex: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(regex, flags)


#: A host:port as Go, nginx and httpd print it (``:80``, ``0.0.0.0:80``, ``[::]:80``).
_ADDR = r"(?P<addr>[^\s:]{0,253}|\[[0-9A-Fa-f:.%\w]{0,60}\]):(?P<port>\d{1,5})"
_EPERM_CAPS = (
    "the kernel refused to execute the program (EPERM) because it carries file capabilities "
    "that the process may not receive: the container's capability bounding set lacks them "
    "(--cap-drop, a non-root user) or no_new_privs is set"
)

#: What a refused bind hides on its line: its ": bind: permission denied" is no path's.
_NOT_A_PATH = ("go-bind-eacces", "go-path-eacces", "path-eacces")

PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        id="rootless-podman-privileged-port",
        needles=("rootlessport cannot expose privileged port",),
        before=0,
        after=700,
        regex=_p(
            r"rootlessport cannot expose privileged port (?P<port>\d{1,5})"
            r"(?:[^\n]{0,600}?: listen (?P<proto>tcp|udp))?"
        ),
        meaning=(
            "rootless Podman's port forwarder (rootlessport), running as your user, could not "
            "bind the host port: it is below net.ipv4.ip_unprivileged_port_start, and a file "
            "capability cannot help because rootlessport runs inside the user namespace"
        ),
        source=(
            "containers/podman pkg/rootlessport (rootlesskit's builtin parent driver, prefixed "
            "'rootlessport' by libpod); text from rootless-containers/rootlesskit "
            "pkg/port/builtin/parent/parent.go annotateEPERM"
        ),
        errno="EACCES",
        ask=_rootless("podman"),
        hides=frozenset({"rootless-docker-privileged-port", *_NOT_A_PATH}),
    ),
    Pattern(
        id="rootless-docker-privileged-port",
        needles=("cannot expose privileged port",),
        before=0,
        after=700,
        regex=_p(
            r"cannot expose privileged port (?P<port>\d{1,5})"
            r"(?:[^\n]{0,600}?: listen (?P<proto>tcp|udp))?"
        ),
        meaning=(
            "rootless Docker's port driver (rootlesskit), running as your user, could not bind "
            "the host port: it is below net.ipv4.ip_unprivileged_port_start and the running "
            "rootlesskit has no CAP_NET_BIND_SERVICE"
        ),
        source=(
            "rootless-containers/rootlesskit pkg/port/builtin/parent/parent.go annotateEPERM, "
            "through moby/moby's userland proxy (PortManager.AddPort) under rootlesskit"
        ),
        errno="EACCES",
        ask=_rootless("docker"),
        hides=frozenset(_NOT_A_PATH),
    ),
    Pattern(
        id="runc-exec-eperm",
        needles=("operation not permitted",),
        before=4200,
        after=0,
        regex=_p(
            r"(?<![\w/])exec (?P<exe>/[^\s:]{0,4095}): operation not permitted"
            r"|exec user process caused:? \"?operation not permitted"
        ),
        meaning=_EPERM_CAPS,
        source=(
            "opencontainers/runc libcontainer/standard_init_linux.go (v1.0: 'exec user process "
            'caused\'; v1.1+: os.PathError{Op: "exec"} from system.Exec / internal/linux.Exec)'
        ),
        errno="EPERM",
        ask=_exe,
    ),
    Pattern(
        id="runc-exec-eacces",
        needles=('exec: "',),
        before=0,
        after=8300,
        regex=_p(
            r'exec: "(?P<exe>[^"]{1,4096})": (?:stat [^:]{1,4096}: )?permission denied',
        ),
        meaning=(
            "the runtime could not execute the program (EACCES): the file has no execute "
            "permission for the container's user, or a directory on its path is not searchable"
        ),
        source=(
            "opencontainers/runc libcontainer/standard_init_linux.go exec.LookPath, whose "
            "golang/go os/exec exec.Error reads 'exec: \"%s\": %v'"
        ),
        errno="EACCES",
        ask=_exec_path,
        hides=frozenset({"go-path-eacces", "path-eacces"}),
    ),
    Pattern(
        id="crun-exec-eperm",
        needles=("exec container process",),
        before=0,
        after=4200,
        regex=_p(
            r"exec container process (?:\(missing dynamic library\?\) )?"
            r"`(?P<exe>[^`]{1,4096})`: Operation not permitted"
        ),
        meaning=_EPERM_CAPS,
        source="containers/crun src/libcrun/container.c ('exec container process `%s`')",
        errno="EPERM",
        ask=_exe,
    ),
    Pattern(
        id="apache-bind-eacces",
        needles=("make_sock: could not bind to address",),
        before=40,
        after=330,
        regex=_p(
            r"\(13\)Permission denied: (?:AH00072: )?make_sock: could not bind to address " + _ADDR
        ),
        meaning=(
            "Apache httpd could not bind the port (EACCES): it is below "
            "net.ipv4.ip_unprivileged_port_start and httpd has no CAP_NET_BIND_SERVICE"
        ),
        source="apache/httpd server/listen.c make_sock() AH00072",
        errno="EACCES",
        ask=_bind,
    ),
    Pattern(
        id="nginx-bind-eacces",
        needles=("(13: permission denied)",),
        before=350,
        after=0,
        regex=_p(r"bind\(\) to " + _ADDR + r" failed \(13: Permission denied\)"),
        meaning=(
            "nginx could not bind the port (EACCES): it is below "
            "net.ipv4.ip_unprivileged_port_start and nginx's master has no CAP_NET_BIND_SERVICE"
        ),
        source="nginx/nginx src/core/ngx_connection.c ngx_open_listening_sockets()",
        errno="EACCES",
        ask=_bind,
    ),
    Pattern(
        id="nginx-path-eacces",
        needles=("(13: permission denied)",),
        before=4200,
        after=0,
        regex=_p(r"open\(\) \"(?P<path>[^\"]{1,4096})\" failed \(13: Permission denied\)"),
        meaning=(
            "nginx could not open a file (EACCES): its user may not search a directory on the "
            "path or may not read or write the file"
        ),
        source="nginx/nginx src/core/ngx_cycle.c, src/os/unix/ngx_files.h (ngx_open_file_n)",
        errno="EACCES",
        ask=_path("r"),
    ),
    Pattern(
        id="go-bind-eacces",
        needles=(": bind: permission denied",),
        before=350,
        after=0,
        regex=_p(r"listen (?P<proto>tcp|udp)[46]? " + _ADDR + r": bind: permission denied"),
        meaning=(
            "a Go program could not bind the port (EACCES): it is below "
            "net.ipv4.ip_unprivileged_port_start and the process has no CAP_NET_BIND_SERVICE"
        ),
        source=(
            "golang/go net (OpError 'listen', os.SyscallError 'bind'); caddy's 'listening on' "
            "(caddyserver/caddy modules/caddyhttp/app.go)"
        ),
        errno="EACCES",
        ask=_bind,
        hides=frozenset({"go-path-eacces", "path-eacces"}),
    ),
    Pattern(
        id="python-asyncio-bind-eacces",
        needles=("error while attempting to bind on address",),
        before=0,
        after=400,
        regex=_p(
            r"error while attempting to bind on address \((?:b?'[^']{0,256}'|b?\"[^\"]{0,256}\")"
            r", (?P<port>\d{1,5})[^)]{0,64}\): permission denied"
        ),
        meaning=(
            "a Python asyncio server could not bind the port (EACCES): it is below "
            "net.ipv4.ip_unprivileged_port_start and the process has no CAP_NET_BIND_SERVICE"
        ),
        source="python/cpython Lib/asyncio/base_events.py create_server()",
        errno="EACCES",
        ask=_bind,
    ),
    Pattern(
        id="python-bind-eacces",
        needles=("[errno 13] permission denied",),
        before=40,
        after=0,
        ends_line=True,
        regex=_p(
            r"(?<![\w.])(?:PermissionError|OSError|socket\.error): \[Errno 13\] Permission denied"
        ),
        context_needle="bind(",
        context=_p(
            r"(?<!\w)bind\(\s{0,8}(?:\(\s{0,8}(?:b?'[^']{0,256}'|b?\"[^\"]{0,256}\"|[\w.]{1,64})"
            r"\s{0,8},\s{0,8}(?P<port>\d{1,5})\b)?"
        ),
        meaning=(
            "a Python program could not bind the port (EACCES): it is below "
            "net.ipv4.ip_unprivileged_port_start and the process has no CAP_NET_BIND_SERVICE"
        ),
        source="python/cpython Modules/socketmodule.c sock_bind → OSError.__str__ ('[Errno 13]')",
        errno="EACCES",
        ask=_bind,
    ),
    Pattern(
        id="python-path-eacces",
        needles=("[errno 13] permission denied:",),
        before=40,
        after=4200,
        regex=_p(
            r"(?:PermissionError|OSError|IOError): \[Errno 13\] Permission denied: "
            r"(?:'(?P<path>[^']{1,4096})'|\"(?P<qpath>[^\"]{1,4096})\")"
        ),
        meaning=(
            "a Python program could not open a file (EACCES): its user may not search a "
            "directory on the path or may not read or write the file"
        ),
        source="python/cpython Objects/exceptions.c OSError.__str__ ('[Errno 13] …: filename')",
        errno="EACCES",
        ask=_path("r"),
    ),
    Pattern(
        id="shim-too-many-open-files",
        needles=("failed to start shim",),
        before=0,
        after=4300,
        regex=_p(
            r"failed to start shim: fork/exec (?P<exe>/[^\s:]{0,4095}): too many open files",
            re.IGNORECASE,
        ),
        meaning=(
            "containerd could not start the container's shim (EMFILE): the daemon reached its "
            "open-file limit (RLIMIT_NOFILE), often a low limit of a rootless dockerd"
        ),
        source="containerd/containerd runtime/v2 TaskManager.Create ('failed to start shim')",
        errno="EMFILE",
        ask=lambda g: Ask(exe=g.get("exe"), nofile=True),
        hides=frozenset({"too-many-open-files"}),
    ),
    Pattern(
        id="too-many-open-files",
        needles=(
            "too many open files",
            "emfile",
            "shared object file: error 24",
            "pipe failed with 24",
        ),
        before=30,
        after=30,
        regex=_p(
            r"too many open files|\bEMFILE\b|shared object file: Error 24\b"
            r"|runtime: pipe failed with 24\b",
            re.IGNORECASE,
        ),
        meaning=(
            "a process reached its open-file limit (EMFILE, RLIMIT_NOFILE): each socket and "
            "file counts, so a busy server needs a higher limit than a shell's default 1024"
        ),
        source=(
            "strerror(EMFILE) (glibc, Go syscall); nginx 'accept4() failed (24: …)'; glibc "
            "elf/dl-load.c ('cannot open shared object file: Error 24'); golang/go "
            "runtime/netpoll_epoll.go netpollinit ('runtime: pipe failed with 24')"
        ),
        errno="EMFILE",
        ask=_nofile,
    ),
    Pattern(
        id="go-path-eacces",
        needles=(": permission denied",),
        before=4220,
        after=0,
        regex=_p(
            r"(?<![\w/])(?P<op>open|stat|lstat|mkdir|chdir|readlink|openat|remove|rename)"
            r" (?P<path>/?[^\s:][^\s:]{0,4095}): permission denied"
        ),
        meaning=(
            "a Go program could not reach a file (EACCES): its user may not search a directory "
            "on the path or may not read or write the file"
        ),
        source="golang/go os.PathError ('open PATH: permission denied')",
        errno="EACCES",
        ask=_go_path,
    ),
    Pattern(
        id="path-eacces",
        needles=(": permission denied",),
        before=4300,
        after=0,
        ends_line=True,
        regex=_p(
            r"(?:^|[\s:\]])(?P<prog>[\w.+-]{1,64}): (?:line \d{1,9}: )?(?:(?P<cd>cd): )?"
            r"(?:[a-z][a-z ]{0,40}'(?P<qpath>[^']{1,4096})'|(?P<path>[^\s:'][^:]{0,4095}?))"
            r": Permission denied"
        ),
        meaning=(
            "a program could not reach a path (EACCES): its user may not search a directory on "
            "the way (x), or may not read (r) or execute the file"
        ),
        source="coreutils and shells ('PROG: PATH: Permission denied', bash 'cd: DIR: …')",
        errno="EACCES",
        ask=_coreutils_path,
    ),
    Pattern(
        id="newuidmap-caps",
        needles=("could not set caps",),
        before=12,
        after=0,
        regex=_p(r"\b(?P<prog>newuidmap|newgidmap): Could not set caps"),
        meaning=(
            "newuidmap/newgidmap lack their privilege (setuid root or file capabilities "
            "cap_setuid/cap_setgid): they cannot write the user namespace's id map"
        ),
        source="shadow-maint/shadow lib/idmapping.c write_mapping() ('%s: Could not set caps')",
        errno="EPERM",
        ask=_subuid,
    ),
    Pattern(
        id="uid-map-write-failed",
        needles=("_map failed",),
        before=20,
        after=70,
        regex=_p(r"write to (?P<map>uid_map|gid_map) failed(?:: (?P<why>[A-Za-z ]{1,64}))?"),
        meaning=(
            "the kernel refused the user namespace's id map: the ranges are not the user's in "
            "/etc/subuid or /etc/subgid, or newuidmap/newgidmap lack their privilege"
        ),
        source="shadow-maint/shadow lib/idmapping.c write_mapping() ('%s: write to %s failed')",
        errno="EPERM",
        ask=_subuid,
    ),
    Pattern(
        id="subid-range-not-allowed",
        needles=(") not allowed",),
        before=120,
        after=0,
        regex=_p(
            r"\b(?P<prog>newuidmap|newgidmap): (?:uid|gid) range \[\d{1,10}-\d{1,10}\) -> "
            r"\[\d{1,10}-\d{1,10}\) not allowed"
        ),
        meaning=(
            "newuidmap/newgidmap refused a range: the user's /etc/subuid or /etc/subgid entry "
            "does not grant it"
        ),
        source="shadow-maint/shadow src/newuidmap.c, src/newgidmap.c verify_ranges()",
        errno="EPERM",
        ask=_subuid,
    ),
)

#: ANSI escape sequences (CSI with parameters, and two-character escapes).
_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[ -/]{0,4}[@-~]|\x1b[@-Z\\-_]")


def lines(text: str) -> Iterator[str]:
    """The lines of ``text`` (CR, LF, CRLF), ANSI escapes removed, blanks trimmed."""
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).strip() if "\x1b" in raw else raw.strip()
        if line:
            yield line


def recognise(text: str) -> tuple[Match, ...]:
    """Every message of :data:`PATTERNS` in ``text``, once per (pattern, ask), in order."""
    cleaned = list(lines(text))
    joined = "\n".join(cleaned)
    lowered = _lower(joined)
    starts = list(accumulate((len(line) + 1 for line in cleaned[:-1]), initial=0))
    found: dict[tuple[str, Ask], Match] = {}
    read: set[str] = set()  # lines already read whose matches need no earlier line
    for index, present in sorted(_needles_by_line(lowered, starts).items()):
        line = cleaned[index]
        if line in read:
            continue
        low = lowered[starts[index] : starts[index] + len(line)]
        tried = sorted({i for needle in present for i in _ENTRIES_BY_NEEDLE[needle]})
        if not any(PATTERNS[i].context is not None for i in tried):
            read.add(line)
        hidden: set[str] = set()
        for entry in (PATTERNS[i] for i in tried):
            if entry.id in hidden:
                continue
            match = _search(entry, line, low)
            if match is None:
                continue
            groups: Groups = match.groupdict()
            if entry.context is not None:
                earlier = cleaned[max(0, index - TRACEBACK_WINDOW) : index]
                before = _context(entry, earlier)
                if before is None:
                    continue
                groups = {**groups, **{k: v for k, v in before.items() if v is not None}}
            ask = entry.ask(groups)
            hidden |= entry.hides
            key = (entry.id, ask)
            if key not in found:
                shown = _excerpt(line, match.start(), match.end())
                found[key] = Match(entry.id, shown, entry.meaning, entry.source, entry.errno, ask)
    return tuple(found.values())


#: Every entry's needles, each searched once through the whole text.
_NEEDLES = tuple(sorted({n for e in PATTERNS for n in e.needles}))
#: Needle → the indexes in :data:`PATTERNS` of the entries it is one of the needles of.
_ENTRIES_BY_NEEDLE = {
    needle: tuple(i for i, e in enumerate(PATTERNS) if needle in e.needles) for needle in _NEEDLES
}


def _needles_by_line(lowered: str, starts: list[int]) -> dict[int, set[str]]:
    """Line index → the needles it holds (``str.find`` over the text, once per line)."""
    hits: dict[int, set[str]] = {}
    for needle in _NEEDLES:
        at = lowered.find(needle)
        while at >= 0:
            index = bisect_right(starts, at) - 1
            hits.setdefault(index, set()).add(needle)
            if index + 1 >= len(starts):
                break
            at = lowered.find(needle, starts[index + 1])
    return hits


def _lower(text: str) -> str:
    """``text`` lower-cased with its indexes kept (only U+0130 grows under ``str.lower``)."""
    if text.isascii():
        return text.lower()
    lowered = text.replace("\u0130", "i").lower()
    if len(lowered) == len(text):
        return lowered
    return text.translate(_ASCII_LOWER)


#: Lower-cases ASCII only: the fallback that keeps indexes whatever the text holds.
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _search(entry: Pattern, line: str, lowered: str) -> re.Match[str] | None:
    """The entry's regex in the windows around its needles' first occurrences."""
    for needle in entry.needles:
        start = 0
        for _ in range(TRIES):
            at = lowered.rfind(needle) if entry.ends_line else lowered.find(needle, start)
            if at < 0:
                break
            end = at + len(needle)
            if entry.ends_line and line[end:].strip():
                break
            match = entry.regex.search(line, max(0, at - entry.before), end + entry.after)
            if match is not None and not (entry.ends_line and line[match.end() :].strip()):
                return match
            if entry.ends_line:
                break
            start = at + 1
    return None


def _excerpt(line: str, start: int, end: int) -> str:
    """``line``, or the part around the match when it is longer than :data:`LINE_MAX`."""
    if len(line) <= LINE_MAX:
        return line
    if end - start >= LINE_MAX:
        return line[start : start + LINE_MAX].strip()
    left = max(0, min(start - (LINE_MAX - (end - start)) // 2, len(line) - LINE_MAX))
    return line[left : left + LINE_MAX].strip()


def _context(entry: Pattern, recent: list[str]) -> Groups | None:
    """The named groups of the entry's context regex on the latest earlier line it matches."""
    assert entry.context is not None
    for line in reversed(recent):
        at = line.find(entry.context_needle)
        if at < 0:
            continue
        match = entry.context.match(line, at, at + CONTEXT_AFTER)
        if match is not None:
            return match.groupdict()
    return None
