"""Adapter: the live facts an exec, bind or access question may need
(:class:`unroot.sources.questions.LiveFacts`): a ``--fs-json`` file, and for a path on this
machine the inodes its lookup reaches (:func:`unroot.facts.fs.gather_tree`) and the
``fs.protected_symlinks`` sysctl, and the running kernel's release.  ``unroot explain`` passes
:data:`LIVE`; so will ``doctor``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from unroot.errors import ParseError, UsageError

if TYPE_CHECKING:
    from unroot.model.access import Inode


class Live:
    """The live system, for :func:`unroot.sources.questions.answer`."""

    def read_json(self, name: str) -> Any:
        try:
            with open(name, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"not valid JSON: {exc}", name) from None

    def access_facts(self, path: str) -> tuple[str, dict[str, Inode], bool]:
        from unroot.facts.fs import absolute_path, gather_tree, protected_symlinks

        path = absolute_path(path)
        tree = gather_tree(path)
        return path, tree, protected_symlinks()

    def kernel_release(self) -> str:
        return os.uname().release


LIVE = Live()
