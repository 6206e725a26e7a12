"""Classifier Studio's engine: models, decoding, preprocessing and prediction.

Plain Python + torch; nothing here imports Qt, so the CLI and the tests drive it without a display.
"""
