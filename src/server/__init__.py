"""The process server: the supervisor (one SO_REUSEPORT worker per CPU) and the connection guard."""
