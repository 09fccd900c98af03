"""``unroot verify``: the model's prediction beside what a real engine does with the image.

:mod:`.engines` (the engine's CLI and facts), :mod:`.image` (config and layers, never run),
:mod:`.predict` (the model's column, through :mod:`unroot.situation.image`), :mod:`.observe`
(one cell on the engine, probed from inside its network namespace: :mod:`.netns`),
:mod:`.outcomes` (classifying what stopped it), :mod:`.run` (the matrix, concurrency, Ctrl-C),
:mod:`.hostexec` (``--exec``: a host binary in a network namespace of its own),
:mod:`.render` (text, JSON, markdown, JUnit).
"""
