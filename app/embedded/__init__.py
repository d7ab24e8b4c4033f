"""Private servers for a machine that has none: PostgreSQL and an MQTT broker from wheels.

Both run as child processes that die with us, even when we are killed with SIGKILL.
"""
