"""What travels between processes: the authenticated channel (:mod:`.channel`), its
request/response matcher (:mod:`.pending`), attach files (:mod:`.attach_info`) and
process checks (:mod:`.process`). Knows no stage, store or engine."""
