"""Which metrics an evaluation reports, how they are labelled, and which way is better.

The names here are the keys of every result row's ``metrics`` and of every figure and
table. This module imports nothing heavy, so the report and the command line can use it
without loading torch; the functions behind the names are in :mod:`gensemcom.eval.scoring`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    higher_is_better: bool


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("mse", "MSE", False),
        MetricInfo("psnr", "PSNR (dB)", True),
        MetricInfo("ssim", "SSIM", True),
        MetricInfo("ms_ssim", "MS-SSIM", True),
        MetricInfo("lpips_alex", "LPIPS (AlexNet)", False),
        MetricInfo("lpips_vgg", "LPIPS (VGG16)", False),
        MetricInfo("vsi", "VSI", True),
        MetricInfo("mask_iou", "key-mask IoU", True),
        MetricInfo("colour_hist", "colour-histogram similarity", True),
        MetricInfo("keypoints", "ORB keypoint similarity", True),
        MetricInfo("perceptual", "VGG16 perceptual loss", False),
        MetricInfo("style", "VGG16 style loss", False),
        MetricInfo("content", "VGG16 content loss", False),
    )
}

# JSON has no infinity, yet the PSNR of identical images is infinite. Every reported PSNR is capped here;
# 100 dB is below the 108.8 dB of a single one-level error in a 768x512 image, so the cap only ever
# merges results that are visually lossless anyway.
PSNR_CAP_DB = 100.0
