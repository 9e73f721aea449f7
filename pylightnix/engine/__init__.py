"""The engine: stages become derivations (:mod:`.manager`, :mod:`.build`,
:mod:`.matchers`), the realization engine walks them (:mod:`.steps`), the drivers run
it (:mod:`.realize`), and it tells frontends what happens (:mod:`.events`,
:mod:`.breakpoints`). Runs in the process that calls ``realize``."""
