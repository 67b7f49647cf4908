"""Behavior policies that generate marlkit's datasets (scripted ones live with their environments)."""
