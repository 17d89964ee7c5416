"""Photo/video -> aligned crop + EG3D camera label + mask, offline (``nerfgan-align``).

- pose: MediaPipe's canonical face mesh fitted to the landmarks (head rotation, scale).
- convention: the one definition of the crop and the label for a generator (FFHQ's by default).
- detect: MediaPipe face mesh + selfie segmentation (optional extra ``.[align]``).
- crop: rotated-square crop, overlay drawing.
- pipeline: ``Aligner`` (photos, videos), ``aligned_target`` (the inversion Target, in memory),
  ``write_aligned`` (the folder); cli: ``nerfgan-align``.
"""

from .convention import Convention, camera_from_angles
from .pipeline import Aligned, Aligner, AlignmentError, aligned_target, read_photo, write_aligned
from .pose import Pose, canonical_mesh, fit_pose

__all__ = [
           "Aligned",
           "Aligner",
           "AlignmentError",
           "Convention",
           "Pose",
           "camera_from_angles",
           "canonical_mesh",
           "fit_pose",
           "read_photo",
           "write_aligned", "aligned_target",
]
