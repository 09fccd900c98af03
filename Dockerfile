# unroot itself as a container image:
#   docker build -t unroot .
#   docker run --rm -v "$PWD:/src" unroot lint /src
# BASE is any Debian-based image: python:3.X-slim-bookworm (the default) brings its own Python;
# a bare Debian (the tests' offline debootstrap base) gets python3 from Debian's archive.
# PIP_ARGS reaches pip in the build stage, e.g. "--no-index --find-links /build/wheels" with the
# wheels of hatchling and unroot's dependencies in ./wheels (the tests build offline that way).
ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS python
SHELL ["/bin/sh", "-eu", "-c"]
RUN if ! command -v python3 >/dev/null; then \
        export DEBIAN_FRONTEND=noninteractive; \
        apt-get update -qq; \
        apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi; \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

FROM python AS build
ARG PIP_ARGS=""
WORKDIR /build
COPY . /build
# The wheel is built from this checkout (hatchling, no build isolation, so PIP_ARGS decides
# where hatchling comes from), then installed with its dependencies into /opt/unroot.
RUN python3 -m venv /tools \
    && /tools/bin/pip install --no-cache-dir --disable-pip-version-check -q $PIP_ARGS "hatchling>=1.27" \
    && /tools/bin/pip wheel --no-cache-dir --disable-pip-version-check -q --no-deps \
        --no-build-isolation -w /dist . \
    && python3 -m venv /opt/unroot \
    && /opt/unroot/bin/pip install --no-cache-dir --disable-pip-version-check -q $PIP_ARGS /dist/unroot-*.whl \
    && /opt/unroot/bin/pip uninstall -y -q pip \
    && /opt/unroot/bin/unroot --version

FROM python AS runtime
COPY --from=build /opt/unroot /opt/unroot
ENV PATH=/opt/unroot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1
# Not root: lint reads files, it needs no privilege (give the mounted files o+r or --user).
USER 65532:65532
WORKDIR /src
ENTRYPOINT ["unroot"]
CMD ["lint", "/src"]
