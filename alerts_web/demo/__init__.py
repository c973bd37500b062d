"""Seed data for the embedded demo (``manage.py seed_demo``): wards, staff, an API key.

The top of the web app: it may import every other app, and none imports it.
"""
