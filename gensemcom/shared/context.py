"""The memory module: a bounded, per-stream store of background contexts both ends keep in step.

After "Large model-empowered semantic communications" (memory module): a
contextual *store* model (what an entry holds, how much is kept) and a
contextual *update* model (which entry an incoming one replaces). Here an
entry is one background context of a stream: the prompt that described it,
a feature vector, a payload (the receiver keeps the background it generated,
the transmitter what it needs to decide whether to refer to it), and the
counters the update rules read. The paper's three update rules are offered:

- ``"fifo"``: freshness of information, the oldest inserted entry goes;
- ``"value"``: value of information, the entry reused least often goes (ties: the oldest);
- ``"correlation"``: correlation of information, the entry least similar to the
  incoming one (cosine of the feature vectors) goes (ties: the oldest).

The transmitter keeps a *mirror* of the receiver's store: both apply the same
operations in the same order (put when a PROMPT is sent / received, get when a
CONTEXT_REF is sent / received, touch on every frame of a stream), so with the
same capacity, rule and stream limit they hold the same contexts and the
transmitter never refers to one the receiver has dropped. See docs/memory.md.

A context id is the first 8 bytes of SHA-256 over (stream, prompt): both ends
compute it from the prompt text alone, so a PROMPT needs no id beside it.
"""

import hashlib
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

RULES = ("fifo", "value", "correlation")
ID_BYTES = 8
FEATURE_DIMS = 256


def context_id(stream: str, prompt: str) -> bytes:
    """Short stable id of a stream's context: SHA-256 of (stream, prompt), first ID_BYTES bytes."""
    digest = hashlib.sha256(stream.encode("utf-8") + b"\x00" + prompt.encode("utf-8")).digest()
    return digest[:ID_BYTES]


def text_features(prompt: str, dims: int = FEATURE_DIMS) -> np.ndarray:
    """Unit-norm hashed character-trigram counts of ``prompt``: a text embedding both ends compute alike.

    It needs no model and depends on the exact prompt bytes only, which is what
    keeps the correlation rule identical at the transmitter and the receiver.
    Prompts that share most of their text (e.g. structured descriptions whose
    colour grids differ in a few cells) get a cosine near 1.
    """
    counts = np.zeros(dims, np.float64)
    data = prompt.encode("utf-8")
    for i in range(max(len(data) - 2, 0)):
        counts[zlib.crc32(data[i : i + 3]) % dims] += 1.0
    norm = np.linalg.norm(counts)
    return counts / norm if norm > 0 else counts


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    if a.shape != b.shape:
        raise ValueError(f"feature vectors differ in shape: {a.shape} and {b.shape}")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


@dataclass(frozen=True)
class ContextEntry:
    """One stored context; ``created`` and ``last_used`` are ticks of the store's operation counter."""

    context_id: bytes
    stream: str
    prompt: str
    features: np.ndarray
    payload: Any
    created: int
    last_used: int
    uses: int = 0  # times reused through get(): the "value" rule's measure


class UnknownContext(KeyError):
    """A context id the store does not hold for that stream (never stored, or evicted)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ContextStore:
    """Bounded per-stream context store: ``capacity`` entries per stream, at most ``max_streams`` streams.

    ``touch``, ``put``, ``match`` and a successful ``get`` mark their stream
    recently used (the first three create it if new); when a new stream exceeds
    ``max_streams``, the least recently used stream is dropped with all its
    contexts. ``ids`` and ``streams`` only look. All methods are thread-safe.
    """

    def __init__(self, capacity: int = 8, rule: str = "fifo", max_streams: int = 64) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"context capacity must be an integer >= 1, got {capacity}")
        if int(max_streams) != max_streams or max_streams < 1:
            raise ValueError(f"max_streams must be an integer >= 1, got {max_streams}")
        if rule not in RULES:
            raise ValueError(f"unknown context update rule {rule!r}; choose one of {', '.join(RULES)}")
        self.capacity = int(capacity)
        self.rule = rule
        self.max_streams = int(max_streams)
        self._streams: OrderedDict[str, dict[bytes, ContextEntry]] = OrderedDict()
        self._tick = 0
        self._lock = threading.Lock()

    def touch(self, stream: str) -> None:
        """Mark ``stream`` recently used; called once per frame so both ends age streams alike."""
        with self._lock:
            self._stream(stream)

    def put(self, stream: str, prompt: str, payload: Any, features: np.ndarray | None = None) -> ContextEntry:
        """Store a context (features default to ``text_features(prompt)``); evicts by the rule when full.

        Putting an id the stream already holds replaces that entry as a fresh
        insertion (new ``created``, zero uses): a re-sent PROMPT is new information,
        and both ends reset it alike even if the receiver had lost the first one.
        """
        vector = text_features(prompt) if features is None else np.asarray(features, np.float64).reshape(-1)
        with self._lock:
            entries = self._stream(stream)
            cid = context_id(stream, prompt)
            entries.pop(cid, None)
            if len(entries) >= self.capacity:
                del entries[self._victim(entries, vector)]
            self._tick += 1
            entry = ContextEntry(cid, stream, prompt, vector, payload, created=self._tick, last_used=self._tick)
            entries[cid] = entry
            return entry

    def get(self, stream: str, cid: bytes) -> ContextEntry:
        """The entry ``cid`` of ``stream``, counted as one reuse; raises UnknownContext if not held.

        Unlike the other calls, it does not create an unknown stream.
        """
        with self._lock:
            entries = self._streams.get(stream, {})
            entry = entries.get(cid)
            if entry is None:
                raise UnknownContext(
                    f"context {cid.hex()} is not held for stream {stream!r} (never stored, or evicted): "
                    f"the stream holds {len(entries)} of {self.capacity} contexts, rule {self.rule}, "
                    f"at most {self.max_streams} streams"
                )
            self._streams.move_to_end(stream)
            self._tick += 1
            entry = replace(entry, uses=entry.uses + 1, last_used=self._tick)
            entries[cid] = entry
            return entry

    def match(self, stream: str, prompt: str, threshold: float = 1.0) -> ContextEntry | None:
        """The stored context ``prompt`` can refer to, without counting a use.

        With ``threshold`` 1 only the identical prompt matches. Below 1, the
        stored context whose features are most similar to the prompt's (cosine
        at least ``threshold``; ties: the newest) matches when no identical one is held.
        """
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"similarity threshold must be in (0, 1], got {threshold}")
        with self._lock:
            entries = self._stream(stream)
            exact = entries.get(context_id(stream, prompt))
            if exact is not None or threshold == 1.0 or not entries:
                return exact
            vector = text_features(prompt)
            scored = [(cosine(e.features, vector), e.created, e) for e in entries.values()]
            similarity, _, best = max(scored, key=lambda s: (s[0], s[1]))
            return best if similarity >= threshold else None

    def ids(self, stream: str) -> list[bytes]:
        """Context ids held for ``stream``, oldest inserted first (does not touch the stream)."""
        with self._lock:
            entries = self._streams.get(stream, {})
            return [e.context_id for e in sorted(entries.values(), key=lambda e: e.created)]

    def streams(self) -> list[str]:
        """Streams held, least recently used first."""
        with self._lock:
            return list(self._streams)

    def _stream(self, stream: str) -> dict[bytes, ContextEntry]:
        """The stream's entries, marked most recently used; a new stream may push out the least recent one."""
        entries = self._streams.get(stream)
        if entries is None:
            entries = self._streams[stream] = {}
            if len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        self._streams.move_to_end(stream)
        return entries

    def _victim(self, entries: dict[bytes, ContextEntry], incoming: np.ndarray) -> bytes:
        """The id the update rule evicts to make room for an entry with features ``incoming``."""
        values = entries.values()
        if self.rule == "fifo":
            victim = min(values, key=lambda e: e.created)
        elif self.rule == "value":
            victim = min(values, key=lambda e: (e.uses, e.created))
        else:
            victim = min(values, key=lambda e: (cosine(e.features, incoming), e.created))
        return victim.context_id
