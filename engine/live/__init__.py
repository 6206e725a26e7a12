"""Live recognition: frames from a webcam, a video file or a network stream, classified as they arrive.

Capture runs in its own thread and keeps only the newest frame; inference always takes the newest one, so a
slow model shows fewer predictions, never older ones.
"""
from engine.live.capture import CaptureThread, LatestFrame, SourceStatus
from engine.live.pipeline import LivePipeline, LivePrediction, LiveSettings, LiveStats, frame_to_input
from engine.live.recording import PredictionLog, save_snapshot
from engine.live.sources import (
    CameraInfo,
    CameraSource,
    Frame,
    FrameSource,
    SourceLost,
    StreamSource,
    VideoFileSource,
    list_cameras,
    open_source,
)

__all__ = [
    "CameraInfo", "CameraSource", "CaptureThread", "Frame", "FrameSource", "LatestFrame", "LivePipeline",
    "LivePrediction", "LiveSettings", "LiveStats", "PredictionLog", "SourceLost", "SourceStatus", "StreamSource",
    "VideoFileSource", "frame_to_input", "list_cameras", "open_source", "save_snapshot",
]
