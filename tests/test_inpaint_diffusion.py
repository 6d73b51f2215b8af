"""Diffusion inpainter on a tiny random-weight Stable Diffusion inpainting model.

The model is built from configs (gensemcom/receiver/random_sd.py, ``tiny``: a
9-channel UNet, a 2-level autoencoder, a 2-layer CLIP text encoder, a
character-level CLIP tokenizer), saved with ``save_pretrained`` and loaded back
through the inpainter's real ``from_pretrained`` path. Random weights draw no pictures, so the tests check the
plumbing: sizes, masks, seeds, schedulers, errors.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
    StableDiffusionInpaintPipeline,
    UniPCMultistepScheduler,
)
from scipy.ndimage import distance_transform_edt

from gensemcom.receiver.composite import composite
from gensemcom.receiver.inpaint_diffusion import SCHEDULERS, DiffusionInpainter, frame_seed, working_size
from gensemcom.receiver.random_sd import random_inpainting_pipeline

H, W = 45, 62  # neither a multiple of 8
PROMPT = "person; background 1x1: 6a7f3c; texture smooth; brightness dark"  # fits 77 character tokens


def tiny_pipeline() -> StableDiffusionInpaintPipeline:
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return random_inpainting_pipeline("tiny", scheduler=scheduler)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-sd-inpainting")
    tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture
def pipeline_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The keyword arguments of every diffusers pipeline call made during the test, in order."""
    calls: list[dict] = []
    run = StableDiffusionInpaintPipeline.__call__

    def spy(self, **kwargs):
        calls.append(kwargs)
        return run(self, **kwargs)

    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__", spy)
    return calls


@pytest.fixture(scope="module")
def inpainter(model_dir: Path) -> DiffusionInpainter:
    return DiffusionInpainter(model_dir, scheduler="ddim", steps=2, device="cpu")


def frame(height: int = H, width: int = W) -> tuple[np.ndarray, np.ndarray]:
    """A random key region (a box) on a black canvas, as the receiver hands it over."""
    known = np.zeros((height, width), dtype=bool)
    known[height // 5 : 4 * height // 5, width // 3 : 3 * width // 4] = True
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[known] = np.random.default_rng(height).integers(0, 256, (known.sum(), 3), dtype=np.uint8)
    return canvas, known


@pytest.mark.parametrize("height, width", [(H, W), (100, 150)])
def test_output_has_the_input_size_and_the_composite_keeps_the_key(inpainter, height, width):
    canvas, known = frame(height, width)
    out = inpainter(PROMPT, canvas, known, seed=3)
    assert out.dtype == np.uint8 and out.shape == (height, width, 3)
    image = composite(out, canvas, known, feather_px=2, match_px=3)
    assert image.shape == canvas.shape
    depth = distance_transform_edt(np.pad(known, 1, mode="edge"))[1:-1, 1:-1]  # scipy, not the compositor's cv2
    assert np.array_equal(image[depth > 2], canvas[depth > 2])


def test_loading_reports_the_model_and_runs_on_the_cpu_in_float32(model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="gensemcom.receiver.inpaint_diffusion"):
        inpainter = DiffusionInpainter(model_dir, scheduler="euler-a", steps=3, guidance_scale=2.0, seed=9,
                                       device="cpu")
    assert [r.message for r in caplog.records if "CPU" in r.message]  # one clear line says it runs on the CPU
    assert inpainter.name == f"diffusion:{model_dir.name}"
    assert inpainter.pipeline.unet.dtype == torch.float32
    settings = inpainter.settings
    assert (settings["model"], settings["scheduler"], settings["steps"], settings["guidance"], settings["seed"]) == \
           (str(model_dir), "euler-a", 3, 2.0, 9)
    assert settings["size"] == 64  # the UNet's 32 latents × the autoencoder's factor of 2
    assert settings["attention"] == "AttnProcessor2_0"  # torch's scaled_dot_product_attention
    assert (settings["device"], settings["dtype"]) == ("cpu", "float32")


def test_a_built_pipeline_plugs_in_and_is_cast_to_float32_on_the_cpu():
    pipeline = tiny_pipeline().to(torch.float16)
    inpainter = DiffusionInpainter(pipeline, steps=1, device="cpu")
    assert inpainter.pipeline.unet.dtype == torch.float32
    assert inpainter.settings["scheduler_class"] == "DDIMScheduler"  # the model's own scheduler is kept
    canvas, known = frame()
    assert inpainter(None, canvas, known).shape == (H, W, 3)


def test_the_same_seed_repeats_and_another_seed_differs(inpainter):
    canvas, known = frame()
    first = inpainter(PROMPT, canvas, known, seed=11)
    assert np.array_equal(first, inpainter(PROMPT, canvas, known, seed=11))
    assert not np.array_equal(first, inpainter(PROMPT, canvas, known, seed=12))
    # Without a seed, the frame's content picks one: repeatable, and the one frame_seed names.
    unseeded = inpainter(PROMPT, canvas, known)
    assert np.array_equal(unseeded, inpainter(PROMPT, canvas, known))
    assert np.array_equal(unseeded, inpainter(PROMPT, canvas, known, seed=frame_seed(0, PROMPT, canvas, known)))


def test_frame_seed_depends_on_every_input():
    canvas, known = frame()
    seeds = {frame_seed(0, PROMPT, canvas, known), frame_seed(1, PROMPT, canvas, known),
             frame_seed(0, None, canvas, known), frame_seed(0, "", canvas, known),
             frame_seed(0, PROMPT, 255 - canvas, known), frame_seed(0, PROMPT, canvas, ~known),
             frame_seed(0, PROMPT, canvas.reshape(W, H, 3), known.reshape(W, H))}  # same bytes, other shape
    assert len(seeds) == 7
    assert all(0 <= s < 2**63 for s in seeds)


def test_prompt_none_is_the_empty_prompt_and_the_prompts_steer_the_model(model_dir):
    inpainter = DiffusionInpainter(model_dir, steps=2, guidance_scale=5.0, device="cpu")
    canvas, known = frame()
    empty = inpainter(None, canvas, known, seed=1)
    assert np.array_equal(empty, inpainter("", canvas, known, seed=1))
    assert not np.array_equal(empty, inpainter(PROMPT, canvas, known, seed=1))
    negative = DiffusionInpainter(model_dir, steps=2, guidance_scale=5.0, negative_prompt="blurry", device="cpu")
    assert not np.array_equal(empty, negative(None, canvas, known, seed=1))


def test_the_pipeline_gets_a_working_size_image_and_a_repaint_mask(inpainter, pipeline_calls):
    calls = pipeline_calls
    canvas, known = frame()
    inpainter(None, canvas, known, seed=0)
    (kwargs,) = calls
    assert (kwargs["height"], kwargs["width"]) == (48, 64)
    assert kwargs["image"].size == kwargs["mask_image"].size == (64, 48)
    assert (kwargs["prompt"], kwargs["negative_prompt"]) == ("", None)
    assert (kwargs["num_inference_steps"], kwargs["strength"]) == (2, 1.0)
    repaint = np.asarray(kwargs["mask_image"]) == 255  # white = repaint
    assert set(np.unique(np.asarray(kwargs["mask_image"]))) == {0, 255}
    # Independent check with nearest-neighbour sampling: a working pixel over background is repainted...
    rows = np.minimum(((np.arange(48) + 0.5) * H / 48).astype(int), H - 1)
    cols = np.minimum(((np.arange(64) + 0.5) * W / 64).astype(int), W - 1)
    assert np.all(repaint[~known[np.ix_(rows, cols)]])
    # ...and one whose 3×3 neighbourhood is all key region is kept, with the key's pixels.
    inner = np.ones((48, 64), dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            inner &= known[np.ix_(np.clip(rows + dr, 0, H - 1), np.clip(cols + dc, 0, W - 1))]
    assert inner.sum() > 100 and not repaint[inner].any()


EXPECTED_SCHEDULERS = {
    "ddim": DDIMScheduler,
    "pndm": PNDMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler-a": EulerAncestralDiscreteScheduler,
    "dpm++": DPMSolverMultistepScheduler,
    "dpm++-karras": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
    "lcm": LCMScheduler,
}


def test_scheduler_names_map_to_their_classes_and_keep_the_model_schedule(model_dir):
    assert set(SCHEDULERS) == set(EXPECTED_SCHEDULERS)
    canvas, known = frame()
    for name, cls in EXPECTED_SCHEDULERS.items():
        inpainter = DiffusionInpainter(model_dir, scheduler=name, steps=2, device="cpu")
        scheduler = inpainter.pipeline.scheduler
        assert type(scheduler) is cls, name
        assert scheduler.config.beta_schedule == "scaled_linear" and scheduler.config.beta_end == 0.012, name
        assert inpainter.settings["scheduler_class"] == cls.__name__
        assert inpainter(PROMPT, canvas, known, seed=0).shape == (H, W, 3), name
    karras = DiffusionInpainter(model_dir, scheduler="dpm++-karras", device="cpu").pipeline.scheduler
    assert karras.config.use_karras_sigmas and karras.config.algorithm_type == "dpmsolver++"
    assert DiffusionInpainter(model_dir, scheduler="pndm", device="cpu").pipeline.scheduler.config.skip_prk_steps


def test_unknown_scheduler_and_bad_settings_are_refused(model_dir):
    with pytest.raises(ValueError, match="unknown scheduler 'heun'.*ddim"):
        DiffusionInpainter(model_dir, scheduler="heun")
    for bad in ({"steps": 0}, {"strength": 0.0}, {"strength": 1.5}, {"guidance_scale": -1.0}, {"seed": -1},
                {"seed": 2**63}, {"size": 4}):
        with pytest.raises(ValueError):
            DiffusionInpainter(model_dir, device="cpu", **bad)


def test_bad_frames_are_refused(inpainter):
    canvas, known = frame()
    with pytest.raises(ValueError):
        inpainter(None, canvas.astype(np.float32), known)
    with pytest.raises(ValueError):
        inpainter(None, canvas, known[:, :-1])
    with pytest.raises(ValueError):
        inpainter(None, canvas, known.astype(np.uint8))
    for seed in (-1, 2**63):
        with pytest.raises(ValueError):
            inpainter(None, canvas, known, seed=seed)


def test_a_missing_model_says_what_to_put_where(tmp_path):
    missing = tmp_path / "sd-inpainting"
    with pytest.raises(FileNotFoundError, match="neither a folder nor in the local Hugging Face cache") as error:
        DiffusionInpainter(missing, device="cpu")
    assert str(missing) in str(error.value) and "model_index.json" in str(error.value)
    with pytest.raises(FileNotFoundError, match="folder without model_index.json"):
        DiffusionInpainter(tmp_path, device="cpu")


@pytest.mark.parametrize("height, width, side, multiple, expected", [
    (45, 62, 64, 8, (48, 64)),      # 45 · 64/62 = 46.5 -> 48
    (512, 768, 512, 16, (336, 512)),  # a Kodak landscape for SD 1.5: 341.3 -> 336
    (768, 512, 1024, 16, (1024, 688)),  # a Kodak portrait for SDXL: 682.7 -> 688
    (10, 1000, 64, 8, (8, 64)),     # never below one multiple
])
def test_working_size_keeps_the_aspect_on_the_multiple_grid(height, width, side, multiple, expected):
    assert working_size(height, width, side, multiple) == expected


def test_the_receiver_service_runs_the_diffusion_backend_and_reports_its_settings(model_dir, astronaut_png):
    """Receiver built from settings (the composition root) with the tiny model; Delivery names model and steps."""
    from gensemcom.receiver.service import delivery_from
    from gensemcom.services import build_receiver, build_transmitter
    from gensemcom.shared.config import ReceiverSettings, TransmitterSettings
    from gensemcom.shared.image_io import decode_image
    from gensemcom.shared.wire import frame_to_pb

    image = decode_image(astronaut_png)[::4, ::4].copy()  # 64×64 keeps two diffusion steps quick
    frame = build_transmitter(TransmitterSettings(key_codec="linear-dct", segmenter="saliency")).encode(image, "d")
    receiver = build_receiver(ReceiverSettings(inpainter="diffusion", inpaint_model=str(model_dir), inpaint_steps=2,
                                               inpaint_size=64, device="cpu"))
    rec = receiver.decode(frame)
    assert rec.image.shape == image.shape
    delivery = delivery_from(frame_to_pb(frame), rec, "linear-dct/1")
    assert delivery.inpainter.startswith("diffusion") and delivery.inpainter_settings["steps"] == "2"
    with pytest.raises(ValueError, match="inpaint-model"):
        build_receiver(ReceiverSettings(inpainter="diffusion"))


def test_a_batch_runs_one_pipeline_call_per_working_size_and_matches_single_calls_in_order(model_dir, pipeline_calls):
    """Per-frame generators draw each frame's noise as a single call does; batched sums round differently (±1)."""
    inpainter = DiffusionInpainter(model_dir, scheduler="euler-a", steps=2, negative_prompt="blurry", device="cpu")
    small, large = frame(), frame(100, 150)  # working sizes 48×64 and 40×64
    items = [(PROMPT, *small), (None, *large), ("a beach", 255 - small[0], small[1])]
    seeds = [5, 6, 7]
    singles = [inpainter(prompt, canvas, known, seed=seed) for (prompt, canvas, known), seed in zip(items, seeds)]
    calls = pipeline_calls
    calls.clear()
    batch = inpainter.inpaint_batch(items, seeds)
    assert [(c["height"], c["width"]) for c in calls] == [(48, 64), (40, 64)]
    assert calls[0]["prompt"] == [PROMPT, "a beach"] and calls[0]["negative_prompt"] == ["blurry", "blurry"]
    assert len(calls[0]["generator"]) == len(calls[0]["image"]) == len(calls[0]["mask_image"]) == 2
    assert calls[1]["prompt"] == ""  # a group of one goes in as a single call does
    assert [b.shape for b in batch] == [s.shape for s in singles] == [(H, W, 3), (100, 150, 3), (H, W, 3)]
    for single, batched in zip(singles, batch):
        assert np.allclose(single, batched, rtol=0, atol=1)
    assert not np.allclose(singles[0], singles[2], rtol=0, atol=1)  # so the order is checked

    calls.clear()
    assert all(np.array_equal(a, b) for a, b in zip(singles, inpainter.inpaint_batch(items, seeds, max_batch=1)))
    assert len(calls) == 3  # max_batch bounds the frames per call; one frame per call is the single call exactly


def test_an_unseeded_batch_seeds_each_frame_from_its_content_and_an_empty_batch_runs_nothing(inpainter, monkeypatch):
    canvas, known = frame()
    batch = inpainter.inpaint_batch([(PROMPT, canvas, known), (None, canvas, known)])
    assert np.allclose(batch[0], inpainter(PROMPT, canvas, known), rtol=0, atol=1)
    assert np.allclose(batch[1], inpainter(None, canvas, known), rtol=0, atol=1)
    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__", lambda self, **kwargs: pytest.fail("ran"))
    assert inpainter.inpaint_batch([]) == []


def test_a_bad_batch_is_refused_before_anything_runs(inpainter, monkeypatch):
    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__", lambda self, **kwargs: pytest.fail("ran"))
    canvas, known = frame()
    with pytest.raises(ValueError, match="2 seeds for 1 frames"):
        inpainter.inpaint_batch([(None, canvas, known)], [1, 2])
    with pytest.raises(ValueError, match="known must be"):
        inpainter.inpaint_batch([(None, canvas, known), (None, canvas, known[:, :-1])])
    with pytest.raises(ValueError, match="seed"):
        inpainter.inpaint_batch([(None, canvas, known)], [-1])
    with pytest.raises(ValueError, match="max_batch"):
        inpainter.inpaint_batch([(None, canvas, known)], max_batch=0)
