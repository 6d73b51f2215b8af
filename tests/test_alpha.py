"""α control: the key region reaches the requested share of pixels, by the documented rule, truthfully.

Truth is independent of the code under test: shares are recounted from the returned
masks, distance rings are recomputed with SciPy's exact Euclidean distance
transform, and the real MediaPipe model supplies the people photos' proposals.
"""

import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.alpha import AlphaControl, check_alpha_target, control_alpha
from gensemcom.transmitter.segment import (
    SELFIE_MODEL,
    Instance,
    MediaPipeSelfieSegmenter,
    Proposal,
    make_segmenter,
)

DATA = shared_data_dir()
PEOPLE = sorted((DATA / "people").iterdir())
TARGETS = (0.05, 0.15, 0.3)
TOLERANCE = 0.02
METHODS = {"backend", "instances", "threshold"} | {f"{base}+{step}" for base in ("backend", "instances", "threshold")
                                                   for step in ("dilate", "erode")}


def load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def people_proposals() -> dict[str, Proposal]:
    mediapipe = MediaPipeSelfieSegmenter(DATA / "weights" / SELFIE_MODEL)
    return {path.name: mediapipe.propose(load(path)) for path in PEOPLE}


@pytest.mark.parametrize("name", [path.name for path in PEOPLE])
def test_mediapipe_people_reach_each_target(people_proposals, name):
    proposal = people_proposals[name]
    person = proposal.probability > 0.5
    for target in TARGETS:
        segmentation = control_alpha(proposal, target, TOLERANCE)
        achieved = np.count_nonzero(segmentation.mask) / segmentation.mask.size
        assert achieved == segmentation.alpha
        assert abs(achieved - target) <= TOLERANCE, (target, achieved, segmentation.method, segmentation.note)
        assert segmentation.note == ""
        assert segmentation.alpha_target == target
        assert segmentation.method in METHODS
        assert segmentation.source == "mediapipe-selfie" and segmentation.labels == ("person",)
        if target < proposal.alpha - TOLERANCE:  # shrinking keeps the surest person pixels
            assert person[segmentation.mask].mean() > 0.9
        if target > proposal.alpha + TOLERANCE:  # growing keeps the person it started from
            assert segmentation.mask[proposal.mask].mean() > 0.9


def test_no_target_keeps_the_backends_mask(people_proposals):
    proposal = people_proposals["yolov5_zidane.jpg"]
    segmentation = control_alpha(proposal, None)
    assert np.array_equal(segmentation.mask, proposal.mask)
    assert segmentation.alpha_target is None and segmentation.method == "backend"


def squares(scores=(0.9, 0.6, 0.3), sides=(40, 30, 20), size=200) -> Proposal:
    """Disjoint squares on a size×size image, one instance each; the backend mask holds them all."""
    instances = []
    for index, (score, side) in enumerate(zip(scores, sides)):
        mask = np.zeros((size, size), dtype=bool)
        mask[10 + 60 * index: 10 + 60 * index + side, 20: 20 + side] = True
        instances.append(Instance(mask=mask, score=score, label=f"thing{index}"))
    union = np.logical_or.reduce([instance.mask for instance in instances])
    return Proposal(mask=union, source="squares", instances=tuple(instances), probability=None, label="thing")


def test_instances_are_taken_in_score_order():
    proposal = squares()
    first, second, third = (instance.mask for instance in proposal.instances)
    for masks, count in (([first], 1), ([first, second], 2)):
        union = np.logical_or.reduce(masks)
        segmentation = control_alpha(proposal, union.mean(), tolerance=0.0)
        assert segmentation.method == "instances"
        assert np.array_equal(segmentation.mask, union)
        assert segmentation.instances == count
        assert segmentation.labels == tuple(f"thing{index}" for index in range(count))
    assert control_alpha(proposal, (first | second | third).mean(), tolerance=0.0).method == "backend"


def test_a_lower_scored_large_instance_is_added_last():
    proposal = squares(scores=(0.9, 0.2), sides=(20, 50))
    small = proposal.instances[0].mask
    segmentation = control_alpha(proposal, small.mean() + 0.01, tolerance=0.02)
    assert np.array_equal(segmentation.mask, small)


def radial(size: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return np.clip(1.0 - np.hypot(x - size / 2, y - size / 2) / size, 0, 1).astype(np.float32)


def test_threshold_keeps_the_most_probable_pixels():
    probability = radial()
    core = probability > 0.9
    proposal = Proposal(mask=core, source="map", instances=(), probability=probability, label="blob")
    for target in (0.1, 0.25, 0.4):
        segmentation = control_alpha(proposal, target, TOLERANCE)
        assert segmentation.method == "threshold"
        assert abs(segmentation.alpha - target) <= TOLERANCE
        kept, dropped = probability[segmentation.mask], probability[~segmentation.mask]
        assert kept.min() >= dropped.max() - 0.01  # a cut: nothing kept is less probable than what was dropped
        assert segmentation.labels == ("blob",)


def test_a_saturated_plateau_is_shrunk_by_erosion_to_its_core():
    size = 200
    probability = np.zeros((size, size), dtype=np.float32)
    probability[40:160, 30:170] = 1.0  # 42 % of the image, all equally sure
    proposal = Proposal(mask=probability > 0.5, source="map", instances=(), probability=probability, label="blob")
    segmentation = control_alpha(proposal, 0.1, TOLERANCE)
    assert segmentation.method.endswith("+erode")
    assert abs(segmentation.alpha - 0.1) <= TOLERANCE
    depth = distance_transform_edt(proposal.mask)
    assert segmentation.mask[~proposal.mask].sum() == 0
    assert depth[segmentation.mask].min() > depth[proposal.mask & ~segmentation.mask].max() - 1e-9


def disc(size: int, radius: float, centre=None) -> np.ndarray:
    cy, cx = centre or (size / 2, size / 2)
    y, x = np.mgrid[0:size, 0:size]
    return np.hypot(x - cx, y - cy) <= radius


def test_without_a_map_the_mask_is_dilated_by_a_ring():
    blob = disc(200, 12)
    proposal = Proposal(mask=blob, source="disc", instances=(), probability=None, label="blob")
    segmentation = control_alpha(proposal, 0.2, TOLERANCE)
    assert segmentation.method == "backend+dilate" and segmentation.note == ""
    assert abs(segmentation.alpha - 0.2) <= TOLERANCE
    distance = distance_transform_edt(~blob)
    assert segmentation.mask[blob].all()
    assert distance[segmentation.mask].max() < distance[~segmentation.mask].min() + 1e-9


def test_dilation_stops_at_its_bound_and_says_so():
    blob = disc(200, 5)
    proposal = Proposal(mask=blob, source="disc", instances=(), probability=None, label="blob")
    segmentation = control_alpha(proposal, 0.9, TOLERANCE, max_dilation_frac=0.1)
    assert segmentation.note == "dilation stops at its bound of 20 px"
    assert np.array_equal(segmentation.mask, distance_transform_edt(~blob) <= 20)
    assert segmentation.alpha < 0.9 - TOLERANCE


def test_an_empty_proposal_without_a_map_reports_why():
    empty = np.zeros((100, 120), dtype=bool)
    segmentation = control_alpha(Proposal(empty, "none", (), None, "thing"), 0.2)
    assert not segmentation.mask.any() and segmentation.alpha == 0.0
    assert "nothing to grow" in segmentation.note
    assert segmentation.alpha_target == 0.2 and segmentation.labels == ()


def test_a_tiny_target_never_gives_an_empty_key_region():
    segmentation = control_alpha(squares(), 1e-5, tolerance=0.02)
    assert segmentation.mask.any()


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, 1.5, -0.1, math.nan, math.inf, "a lot", [0.2]])
def test_bad_targets_are_value_errors(bad):
    with pytest.raises(ValueError, match="alpha target"):
        check_alpha_target(bad)
    with pytest.raises(ValueError, match="alpha target"):
        control_alpha(squares(), bad)
    with pytest.raises(ValueError, match="alpha target"):
        AlphaControl(make_segmenter("saliency"), bad)


@pytest.mark.parametrize(("tolerance", "frac"), [(-0.01, 0.25), (1.0, 0.25), (0.02, -0.1), (0.02, 1.5)])
def test_bad_settings_are_value_errors(tolerance, frac):
    with pytest.raises(ValueError):
        AlphaControl(make_segmenter("saliency"), 0.2, tolerance=tolerance, max_dilation_frac=frac)


def test_make_segmenter_wraps_the_fallback_chain_in_alpha_control():
    # kodim02 (a red door) holds no person: MediaPipe hands over to saliency, whose map reaches the target.
    segmenter = make_segmenter("mediapipe", DATA / "weights", alpha=0.15)
    assert isinstance(segmenter, AlphaControl)
    image = load(DATA / "kodak24" / "kodim02.png")
    segmentation = segmenter(image)
    assert segmentation.source == "saliency"
    assert abs(segmentation.alpha - 0.15) <= TOLERANCE
    assert np.array_equal(segmentation.mask, segmenter(image).mask)
    with pytest.raises(ValueError, match="alpha target"):
        make_segmenter("saliency", alpha=0.0)
