"""Live recognition: frames from a webcam, a video file or a network stream, classified as they arrive.

Capture runs in its own thread and keeps only the newest frame; inference always takes the newest one, so a
slow model shows fewer predictions, never older ones.

The modules are imported one by one (engine.live.sources, .capture, .pipeline, .recording, .types), so the
window imports only the light ones at start-up.
"""
