"""Helpers of the doctor tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

ROOTLESS_USER = os.environ.get("UNROOT_ROOTLESS_USER", "unroot-rl")


@dataclass(frozen=True)
class Rootless:
    """The rootless engines' owner and how to reach its engines."""

    user: str
    uid: int
    subuid_start: int
    subgid_start: int
    image: str
    session: str

    def cli(self, kind: str) -> list[str]:
        if kind == "docker":
            docker = os.environ.get("UNROOT_DOCKER", "/usr/bin/docker")
            return [docker, "-H", f"unix:///run/user/{self.uid}/docker.sock"]
        return ["podman", "--remote", "--url", f"unix:///run/user/{self.uid}/podman/podman.sock"]
