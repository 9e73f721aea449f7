"""Builds on an executor (:mod:`.executors`): the parallel driver (:mod:`.driver`),
what a worker runs (:mod:`.worker`), realizations copied between stores
(:mod:`.transfer`), and the pause hub through which a build paused on its worker is
reached (:mod:`.hub`, :mod:`.remote_pause`)."""
