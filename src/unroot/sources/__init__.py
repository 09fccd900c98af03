"""PURE configuration files → facts with file:line: Dockerfiles, compose files, Kubernetes
manifests, systemd units, the shell they embed, and the registry of input kinds.  Nothing here
imports a front end (lint/, commands/, launch/)."""
