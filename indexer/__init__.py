"""Turning image files into records and vectors: scanning, safe loading, OCR, encoders, the pipeline."""
