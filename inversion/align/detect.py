"""Face landmarks and a person mask from MediaPipe 0.10.21's bundled models (offline).

MediaPipe is an optional dependency: ``pip install -e ".[align]"``. Its face mesh returns 468
landmarks (+10 iris points with ``refine_landmarks``) with x, y normalized by the image width and
height and a relative depth z in the scale of x; we return them in pixels.
"""

from __future__ import annotations

import numpy as np

INSTALL_HINT = 'face alignment needs MediaPipe: pip install -e ".[align]" (mediapipe==0.10.21)'


def _mediapipe():
    try:
        import mediapipe as mp
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise ImportError(INSTALL_HINT) from e
    return mp


class FaceDetector:
    """MediaPipe face mesh (static images) + selfie segmentation, created once, used many times.

    ``landmarks(image)`` -> list of (478, 3) float64 pixel arrays, largest face first;
    ``person_mask(image)`` -> (H, W) float32 in [0, 1]. image: (H, W, 3) uint8 RGB."""

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5):
        mp = _mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
            min_detection_confidence=min_confidence)
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self) -> None:
        self._mesh.close()
        self._segmenter.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def landmarks(self, image: np.ndarray) -> list[np.ndarray]:
        _check_rgb(image)
        H, W = image.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image))
        faces = []
        for face in result.multi_face_landmarks or []:
            pts = np.array([(p.x * W, p.y * H, p.z * W) for p in face.landmark], dtype=np.float64)
            faces.append(pts)
        return sorted(faces, key=_face_area, reverse=True)

    def person_mask(self, image: np.ndarray) -> np.ndarray:
        _check_rgb(image)
        mask = self._segmenter.process(np.ascontiguousarray(image)).segmentation_mask
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)


def _face_area(points: np.ndarray) -> float:
    span = points[:, :2].max(0) - points[:, :2].min(0)
    return float(span[0] * span[1])


def _check_rgb(image: np.ndarray) -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got "
                         f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image).__name__)}")
