"""Helpers of the entry points: config printing, run paths, error reporting."""
