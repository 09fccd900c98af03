"""``unroot doctor`` and ``unroot undo``: the live host's answers, the narrowest fix, applied and
undone exactly.

:mod:`.subject` says who the questions are about; the subject builders (``--user``/``--group``,
``--rootless``, ``--container``, ``--compose``, ``--unit``) feed it from facts/ and engine/;
:mod:`.checks` asks the model; fixes become :mod:`.actions` that ``--apply`` performs after
writing a :mod:`.journal`.
"""
