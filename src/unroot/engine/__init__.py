"""Container engines: typed adapters over their command-line clients (the docker CLI today;
podman next).  They run things and report what happened; callers decide what it means."""
