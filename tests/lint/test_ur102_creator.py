"""UR102 names the instruction that really wrote the file, not a later RUN lint cannot follow
(ingress-nginx: the COPY at line 45, not "the RUN at line 50")."""

from __future__ import annotations

import pytest

from unroot.lint.engine import lint_texts

_BLANKET = "RUN bash -c 'for d in /var/log /tmp/x; do mkdir -p $d; chown -R www-data $d; done'\n"


@pytest.mark.parametrize(
    ("copy", "expected"),
    [
        # the directory holds an ARG without a value, the name is known
        ("COPY bin/${TARGETARCH}/web /\n", "the COPY at line 3 already stored it"),
        ("COPY bin/amd64/web /web\n", "the COPY at line 3 already stored it"),
        # nothing names /web: it comes with the base image; the RUN only may have touched it
        ("", "the base image (FROM at line 1) already stores it"),
    ],
)
def test_the_earlier_line_is_the_writer(copy: str, expected: str) -> None:
    text = (
        "FROM alpine:3.20\nARG TARGETARCH\n"
        + (copy or "LABEL x=y\n")
        + _BLANKET
        + "RUN apk add --no-cache libcap && setcap cap_net_bind_service=+ep /web\n"
        + 'USER 10001\nCMD ["/web"]\n'
    )
    result = lint_texts([("Dockerfile", "dockerfile", text)])
    messages = [f.message for f in result.findings if f.rule == "UR102"]
    assert len(messages) == 1
    assert expected in messages[0]
    assert "the RUN at line 4" not in messages[0]
