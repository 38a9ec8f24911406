"""Turning a query into ranked memes: signals, fusion, similar-image search."""
