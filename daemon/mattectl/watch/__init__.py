"""Intake: watchdog handlers that only enqueue, a pure stability tracker, and the intake loop."""
