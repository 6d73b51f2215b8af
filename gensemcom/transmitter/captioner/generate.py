"""Caption an image with the paper's decoding (Table II) and fold the three beams into one caption.

Table II: num_beams 3, length_penalty 0.5, num_return_sequences 3. Beam search
ranks each finished beam by transformers' length-normalised score,
``sum(log p(token)) / n_tokens ** length_penalty``; with 0.5 a longer caption pays
less per token than with plain averaging, so the three beams differ mostly in how
much detail they add at the end ("... on a beach" / "... on a beach with a dog").

The rule that turns three candidates into one caption (``merge_captions``):

1. Base: the candidate with the best length-normalised score (ties: the earlier one),
   cut word by word from the end until it fits the budget.
2. Extras: the noun phrases of the other candidates, best candidate first and left to
   right, whose head noun (last word) is not already a word of the caption. Each is
   appended ("<base> with <p1> and <p2> ...") only if the result still fits; one that
   does not fit is skipped and the next is tried.

A noun phrase is found without a tagger, from the shape of BLIP captions: a
determiner ("a", "the", "two", ...) followed by up to four words, ending before the
next determiner, preposition or conjunction, or verb ("riding", "is", ...). It misses
phrases without a determiner ("a group of people" gives only "a group"), which costs
an extra, never a wrong word in the base caption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gensemcom.shared.image_io import check_rgb8
from gensemcom.transmitter.captioner.load import Captioner

DETERMINERS = frozenset("a an the two three four five several some many his her their its this that these those "
                        "another one".split())
CONNECTORS = frozenset("on in at of with and or near next to by under over behind above below beside between "
                       "from for into onto while is are sits stands holds wears has have looks who which".split())
ING_NOUNS = frozenset("building ceiling painting clothing evening morning ring king wing swing string spring thing "
                      "railing awning wedding bedding pudding sibling lightning".split())
"""Words ending in "-ing" that are nouns, not the participles that end a phrase."""
MAX_PHRASE_WORDS = 4


@dataclass(frozen=True)
class Decoding:
    """Beam-search settings; the defaults are the paper's Table II."""

    num_beams: int = 3
    length_penalty: float = 0.5
    num_return_sequences: int = 3
    max_new_tokens: int = 30

    def __post_init__(self) -> None:
        if self.num_beams < 1 or not 1 <= self.num_return_sequences <= self.num_beams:
            raise ValueError(f"need 1 <= num_return_sequences <= num_beams, got {self.num_return_sequences} "
                             f"and {self.num_beams}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class Candidate:
    """One returned beam: its text and its length-normalised log-probability score."""

    text: str
    score: float
    token_ids: tuple[int, ...] = ()
    """Generated ids after the BOS, through the EOS if it ended: what ``score`` was computed over."""


def generate_captions(captioner: Captioner, image: np.ndarray, decoding: Decoding = Decoding()) -> list[Candidate]:
    """The ``decoding.num_return_sequences`` beams for one uint8 H×W×3 RGB image, best first."""
    check_rgb8(image)
    pixels = captioner.processor(images=image, return_tensors="pt")["pixel_values"]
    dtype = captioner.model.vision_model.embeddings.patch_embedding.weight.dtype
    with torch.inference_mode():
        out = captioner.model.generate(
            pixel_values=pixels.to(device=captioner.device, dtype=dtype), do_sample=False,
            num_beams=decoding.num_beams, length_penalty=decoding.length_penalty,
            num_return_sequences=decoding.num_return_sequences, max_new_tokens=decoding.max_new_tokens,
            output_scores=True, return_dict_in_generate=True)
    texts = captioner.processor.batch_decode(out.sequences, skip_special_tokens=True)
    scores = out.sequences_scores.float().cpu().tolist() if decoding.num_beams > 1 else [0.0] * len(texts)
    eos = captioner.model.config.text_config.sep_token_id
    return best_first([Candidate(" ".join(text.split()), score, _generated(ids, eos))
                       for text, score, ids in zip(texts, scores, out.sequences.cpu().tolist())])


def _generated(sequence: list[int], eos: int) -> tuple[int, ...]:
    """The ids after the BOS, cut after the first EOS (what follows is padding)."""
    body = sequence[1:]
    return tuple(body[:body.index(eos) + 1] if eos in body else body)


def best_first(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates sorted by score, highest first; equal scores keep their order."""
    return sorted(candidates, key=lambda candidate: -candidate.score)


def noun_phrases(text: str) -> list[str]:
    """Determiner-led noun phrases of a caption, left to right (see the module docstring)."""
    words = re.findall(r"[a-z0-9'-]+", text.lower())
    phrases, i = [], 0
    while i < len(words):
        if words[i] not in DETERMINERS:
            i += 1
            continue
        end = i + 1
        while end < len(words) and end - i <= MAX_PHRASE_WORDS and not _ends_phrase(words[end]):
            end += 1
        if end > i + 1:
            phrases.append(" ".join(words[i:end]))
        i = end
    return phrases


def _ends_phrase(word: str) -> bool:
    return (word in DETERMINERS or word in CONNECTORS
            or (word.endswith("ing") and len(word) > 4 and word not in ING_NOUNS))


def truncate_to_fit(text: str, fits: Callable[[str], bool]) -> str:
    """``text`` without as few trailing words as needed for ``fits``; "" when no prefix fits."""
    words = text.split()
    while words and not fits(" ".join(words)):
        words.pop()
    return " ".join(words)


def merge_captions(candidates: list[Candidate], fits: Callable[[str], bool]) -> str:
    """One caption from the beams: the best one plus the others' new noun phrases, as far as ``fits`` allows."""
    if not candidates:
        raise ValueError("need at least one caption candidate")
    ranked = best_first(candidates)
    caption = truncate_to_fit(ranked[0].text, fits)
    if not caption:
        return ""
    known = set(caption.lower().split())
    extras: list[str] = []
    for candidate in ranked[1:]:
        for phrase in noun_phrases(candidate.text):
            head = phrase.split()[-1]
            if head in known:
                continue
            merged = f"{caption} with {' and '.join(extras + [phrase])}"
            if fits(merged):
                extras.append(phrase)
                known.add(head)
    return f"{caption} with {' and '.join(extras)}" if extras else caption
