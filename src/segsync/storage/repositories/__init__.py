"""Repositories: the functions services call to read and write the metadata DB.

Each takes a ``Session`` (from ``Database.session()``) and returns plain frozen records, never
ORM objects, so callers can use results after the session closes.
"""
