"""``unroot run``: bind the sockets, drop every privilege, hand the sockets to the service.

``plan`` is pure (command line → :class:`~unroot.launch.plan.LaunchPlan`); ``accounts`` reads the
user and group databases; ``sockets`` binds; ``drop`` changes credentials, moves the sockets to
fds 3.. and execs; ``activation`` is the receiving side (``unroot.activation``).

The exec path imports no ``dataclasses``, ``typing`` or model module at run time: each of those
costs milliseconds of launch latency (bench/bench_launch.py), and the service waits for them.
"""
