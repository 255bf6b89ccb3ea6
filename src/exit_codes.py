"""The exit status of every command (`ml-service serve|train|models`, and the `python -m` names for them)."""

OK = 0  # done (or, for --if-missing, nothing to do)
NOT_STARTED = 1  # the server could not start: a port is taken
REFUSED = 2  # bad input, an unusable model, data or key file, or a store change refused; nothing changed
GATE_REFUSED = 3  # the quality gate found the model worse than CURRENT; nothing published
