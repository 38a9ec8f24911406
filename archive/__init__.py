"""What the archive knows about each meme and where it is kept.

This package imports neither `indexer` nor `search`: it is the bottom layer.
"""
