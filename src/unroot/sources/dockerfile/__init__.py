"""Dockerfiles: :mod:`.parser` (instructions → facts), :mod:`.build` (the files of a stage, for
every builder), :mod:`.buildkit` (instruction syntax), :mod:`.run` (what RUN commands do)."""
