"""``unroot bench``: does the proxy matter?  One backend served through each way of putting a
service on a privileged port, measured against the backend binding the port itself.

``methods.py`` starts and stops each method (and records what it created, for the cleanup),
``loads.py`` runs wrk (maximum throughput) and ``openloop.py`` (a fixed rate, latencies without
coordinated omission) and reads the proxies' CPU time from /proc, ``runner.py`` interleaves the
methods over rounds, ``report.py`` renders the ratio table and the JSON, ``chart.py`` the PNG and
SVG (matplotlib, the optional ``chart`` extra).  ``httpd.py`` (the backend) and ``openloop.py``
are stdlib-only scripts run by path, as nobody or inside a network namespace.
"""
