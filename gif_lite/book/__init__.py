"""Helpers that exist to serve the book's chapters: data, models, experiments, figures.

The library is ``gif_lite`` itself; nothing in the core imports from here.  Each module's docstring
names the chapters that use it.
"""
