"""Segmenter backends behind one interface: instances, YOLO-seg (offline), class filters, make_segmenter.

No real YOLO weights exist here, so the YOLO tests build yolo11n-seg.yaml with
seeded random weights. Such a model finds nothing; to exercise the detection path,
one test raises the "person" logit bias of the classification head so that every
anchor claims a person, which must then come back as person instances at image
resolution, and not at all when the class filter asks for cars.
"""

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from skimage.measure import label as connected_components

from gensemcom.shared.image_io import ImageError, decode_image
from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.alpha import AlphaControl
from gensemcom.transmitter.segment import (
    SELFIE_MODEL,
    FallbackSegmenter,
    MediaPipeSelfieSegmenter,
    SaliencySegmenter,
    make_segmenter,
)
from gensemcom.transmitter.segment_yolo import COCO_NAMES, YoloSegmenter, parse_classes, resolve_weights

DATA = shared_data_dir()
ARCHITECTURE = "yolo11n-seg.yaml"
TOLERANCE = 0.02
SMALL = 320  # YOLO input size for the tests: a quarter of the default's work, the same code path


def load(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / "people" / name).convert("RGB"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """The astronaut at 256×256: YOLO's cost grows with the pixels its masks are scaled to."""
    return np.asarray(Image.fromarray(load("skimage_astronaut.png")).resize((256, 256)))


@pytest.fixture(scope="module")
def random_yolo() -> YoloSegmenter:
    return YoloSegmenter(ARCHITECTURE, classes="person", image_size=SMALL)


def claim_everything_is(segmenter: YoloSegmenter, class_id: int, logit: float = 12.0) -> None:
    """Set the classification bias of ``class_id`` high at every scale of the YOLO head."""
    head = segmenter.model.model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias[class_id] = logit


# --- MediaPipe and saliency instances ------------------------------------------------------------------------


def test_mediapipe_instances_are_the_connected_people_scored_by_mean_probability():
    proposal = MediaPipeSelfieSegmenter(DATA / "weights" / SELFIE_MODEL).propose(load("yolov5_bus.jpg"))
    components = connected_components(proposal.mask, connectivity=2)
    assert len(proposal.instances) == components.max() >= 2
    expected = sorted((float(proposal.probability[components == index].mean()) for index in
                       range(1, components.max() + 1)), reverse=True)
    assert [instance.score for instance in proposal.instances] == pytest.approx(expected, abs=1e-6)
    assert np.array_equal(np.logical_or.reduce([instance.mask for instance in proposal.instances]), proposal.mask)
    assert all(instance.label == "person" for instance in proposal.instances)
    assert proposal.probability.dtype == np.float32 and 0 <= proposal.probability.min() <= 1


def test_saliency_instances_cover_the_backends_own_blobs():
    proposal = SaliencySegmenter().propose(load("mmpose_mpii_004645041.jpg"))
    union = np.logical_or.reduce([instance.mask for instance in proposal.instances])
    assert proposal.mask.any() and not (proposal.mask & ~union).any()
    scores = [instance.score for instance in proposal.instances]
    assert scores == sorted(scores, reverse=True)
    for instance in proposal.instances:
        assert instance.score == pytest.approx(float(proposal.probability[instance.mask].mean()), abs=1e-6)


# --- class filter ------------------------------------------------------------------------------------------


def test_coco_names_match_ultralytics_dataset_file():
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    assert COCO_NAMES == tuple(names[index] for index in range(len(names)))


@pytest.mark.parametrize(("spec", "ids"), [
    ("person", (0,)), ("Person", (0,)), (" person , car ", (0, 2)), ("0,2", (0, 2)), (0, (0,)),
    (["person", 2, "traffic light"], (0, 2, 9)), (("car", "car", 2), (2,)), (np.int64(79), (79,)), (None, None), (" All ", None),
])
def test_class_filter_accepts_names_and_ids(spec, ids):
    assert parse_classes(spec) == ids


def test_unknown_class_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown class 'persons'") as error:
        parse_classes("persons")
    assert "person" in str(error.value) and "toothbrush" in str(error.value)


@pytest.mark.parametrize("spec", [80, -1, "80", [], "", True, [1.5]])
def test_bad_class_specs_are_value_errors(spec):
    with pytest.raises(ValueError):
        parse_classes(spec)


def test_class_filter_uses_the_models_own_names():
    assert parse_classes("cat", names=("dog", "cat")) == (1,)
    with pytest.raises(ValueError, match="valid names: dog, cat"):
        parse_classes("person", names=("dog", "cat"))


# --- YOLO: weights, interface, detections ------------------------------------------------------------------


def test_missing_yolo_weights_say_where_to_put_them(tmp_path):
    expected = tmp_path / "yolo" / "yolo11n-seg.pt"
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded") as error:
        make_segmenter("yolo", tmp_path)
    assert str(expected) in str(error.value)
    with pytest.raises(FileNotFoundError, match="no-such.pt"):
        resolve_weights(tmp_path / "no-such.pt", tmp_path)


def test_yolo_urls_are_refused():
    with pytest.raises(ValueError, match="not a URL"):
        resolve_weights("https://example.org/yolo11n-seg.pt", None)


def test_random_yolo_runs_through_the_segmenter_interface(random_yolo, astronaut):
    assert random_yolo.name == "yolo:yolo11n-seg.yaml"
    assert random_yolo.names == COCO_NAMES and random_yolo.classes == (0,)
    segmentation = random_yolo(astronaut)
    assert segmentation.mask.shape == astronaut.shape[:2] and segmentation.mask.dtype == np.bool_
    assert segmentation.source == "yolo:yolo11n-seg.yaml"
    assert (segmentation.labels == ()) == (not segmentation.mask.any())
    with pytest.raises(ValueError):
        random_yolo(astronaut[..., :2])


def test_alpha_control_on_random_yolo_reaches_the_target_or_says_why(random_yolo, astronaut):
    proposal = random_yolo.propose(astronaut)
    segmentation = AlphaControl(random_yolo, 0.15)(astronaut)
    if proposal.instances:
        assert abs(segmentation.alpha - 0.15) <= TOLERANCE
    else:
        assert segmentation.alpha == 0.0 and "nothing to grow" in segmentation.note
    # Through make_segmenter, an empty YOLO result hands over to saliency, whose map reaches the target.
    chained = make_segmenter("yolo", DATA / "weights", yolo_weights=ARCHITECTURE, alpha=0.15)
    segmentation = chained(astronaut)
    assert abs(segmentation.alpha - 0.15) <= TOLERANCE and segmentation.note == ""
    assert segmentation.source == ("saliency" if not proposal.instances else "yolo:yolo11n-seg.yaml")


def test_building_yolo_leaves_pillow_refusing_non_images(random_yolo):
    # ultralytics patches PIL.Image.open on import; the segmenter must undo that for decode_image's sake.
    assert Image.open.__module__ == "PIL.Image"
    with pytest.raises(ImageError, match="not a readable image"):
        decode_image(b"\x00" * 64)


def test_yaml_weights_are_seeded_and_repeatable(random_yolo):
    again = YoloSegmenter(ARCHITECTURE, seed=0)
    other = YoloSegmenter(ARCHITECTURE, seed=1)
    first = list(random_yolo.model.model.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(first, again.model.model.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first, other.model.model.state_dict().values()))


def test_forced_person_detections_become_instances_and_round_trip_through_a_weights_file(astronaut, tmp_path):
    yolo = YoloSegmenter(ARCHITECTURE, classes="person", confidence=0.5, image_size=SMALL)
    claim_everything_is(yolo, COCO_NAMES.index("person"))
    proposal = yolo.propose(astronaut)
    assert 0 < len(proposal.instances) <= yolo.max_instances
    scores = [instance.score for instance in proposal.instances]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    assert all(instance.label == "person" and instance.mask.shape == astronaut.shape[:2]
               for instance in proposal.instances)
    assert np.array_equal(np.logical_or.reduce([instance.mask for instance in proposal.instances]), proposal.mask)
    assert proposal.probability is None
    # ultralytics' own full-resolution masks (retina_masks) agree with the masks scaled one at a time here.
    (native,) = yolo.model.predict(np.ascontiguousarray(astronaut[..., ::-1]), imgsz=SMALL, conf=0.5, classes=[0],
                                   max_det=yolo.max_instances, retina_masks=True, device="cpu", verbose=False)
    native_union = native.masks.data.numpy().any(axis=0)
    assert (native_union & proposal.mask).sum() / (native_union | proposal.mask).sum() > 0.98

    # The same weights saved as a .pt under weights_dir/yolo/ load by bare name and find the same people.
    (tmp_path / "yolo").mkdir()
    yolo.model.save(tmp_path / "yolo" / "forced.pt")
    reloaded = YoloSegmenter("forced.pt", weights_dir=tmp_path, classes="person", confidence=0.5, image_size=SMALL)
    assert reloaded.name == "yolo:forced.pt"
    assert np.array_equal(reloaded.propose(astronaut).mask, proposal.mask)
    # Asking for cars only: the model claims only people, so nothing comes back.
    cars = YoloSegmenter("forced.pt", weights_dir=tmp_path, classes="car", confidence=0.5, image_size=SMALL)
    assert cars.propose(astronaut).instances == ()


def test_a_detection_model_is_not_a_segmenter():
    with pytest.raises(ValueError, match="not a segmentation"):
        YoloSegmenter("yolo11n.yaml")


# --- make_segmenter ------------------------------------------------------------------------------------------


def test_make_segmenter_builds_each_backend():
    assert isinstance(make_segmenter("saliency"), SaliencySegmenter)
    mediapipe = make_segmenter("mediapipe", DATA / "weights")
    assert isinstance(mediapipe, FallbackSegmenter) and isinstance(mediapipe.primary, MediaPipeSelfieSegmenter)
    yolo = make_segmenter("yolo", DATA / "weights", yolo_weights=ARCHITECTURE, classes=["person", "dog"],
                          confidence=0.4)
    assert isinstance(yolo, FallbackSegmenter) and isinstance(yolo.primary, YoloSegmenter)
    assert yolo.primary.classes == (0, 16) and yolo.primary.confidence == 0.4
    controlled = make_segmenter("saliency", alpha=0.2, alpha_tolerance=0.01)
    assert isinstance(controlled, AlphaControl) and controlled.target == 0.2 and controlled.tolerance == 0.01
    with pytest.raises(ValueError, match="mediapipe, saliency, yolo"):
        make_segmenter("sam")
    with pytest.raises(ValueError, match="unknown class"):
        make_segmenter("yolo", DATA / "weights", yolo_weights=ARCHITECTURE, classes="unicorn")
