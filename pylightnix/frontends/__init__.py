"""What a person sees: the progress display (:mod:`.progress`), the IPython terminal
at a pause (:mod:`.terminal`), the console of a build paused on a worker
(:mod:`.remote_console`, :mod:`.attach`), ``pylightnix debug`` (:mod:`.debug`) and
the command line (:mod:`.cli`). They hear the engine through hooks only."""
