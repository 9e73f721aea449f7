"""What the adapter and the debuggee share: DAP framing (:mod:`.messaging`), handlers by name
(:mod:`.dispatch`) and the names of their conversation (:mod:`.protocol`). The side channel and
attach files are in the core (:mod:`pylightnix.wire.channel`, :mod:`pylightnix.wire.attach_info`)."""
