"""Classifier Studio's desktop window (PySide6); engine work runs in gui.engine_worker's thread."""
