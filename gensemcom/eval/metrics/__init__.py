"""Image-quality metrics for evaluating what the receiver reconstructs.

Pixel fidelity (MSE, PSNR), structure (SSIM, MS-SSIM), perception (LPIPS with AlexNet/VGG16),
semantics (mask IoU), palette (hue/saturation histogram correlation) and local structure
(ORB keypoint matching), VGG16 content/perceptual/style losses and VSI. All take uint8 HxWx3 RGB arrays (masks: boolean HxW) and return floats.

FID is deliberately absent: it needs the Inception-v3 weights used by the reference implementation,
which cannot be obtained offline, and a substitute network would give numbers that are not FID.
"""

from gensemcom.eval.metrics.colour import colour_histogram_similarity
from gensemcom.eval.metrics.keypoints import keypoint_similarity
from gensemcom.eval.metrics.lpips_metric import lpips_distance
from gensemcom.eval.metrics.masks import mask_iou
from gensemcom.eval.metrics.structure import ms_ssim
from gensemcom.eval.metrics.vgg_losses import content_loss, perceptual_loss, style_loss
from gensemcom.eval.metrics.vsi import vsi
from gensemcom.shared.metrics import mse, psnr, ssim

__all__ = [
    "colour_histogram_similarity",
    "content_loss",
    "keypoint_similarity",
    "lpips_distance",
    "mask_iou",
    "ms_ssim",
    "mse",
    "perceptual_loss",
    "psnr",
    "ssim",
    "style_loss",
    "vsi",
]
