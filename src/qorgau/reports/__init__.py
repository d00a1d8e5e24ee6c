"""Citizen reports ("Law and Order"): anonymous-safe reports to the police, verified under a regulation."""
