"""Compose files: :mod:`.parser` (services → workloads), :mod:`.env` (interpolation and .env
files), :mod:`.merge` (override files, ``extends``, ``include``)."""
