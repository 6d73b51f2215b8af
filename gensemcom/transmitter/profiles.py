"""Per-client compression: a client names a profile, the transmitter codes its images for that device.

The multi-task paper compresses the large models per client capability: a
phone gets an INT4 captioner and fewer key-region symbols, a server the full
model. Here a *profile* is a named set of transmitter settings (captioner
precision, key-region bandwidth ratio, or any other pipeline setting) that
overrides the service's own for the requests that ask for it, through the
gRPC metadata key ``semcom-profile``.

Each profile in use needs its own pipeline (its own quantised captioner), so
the :class:`PipelinePool` builds them on first use and keeps at most
``max_loaded`` of them, evicting the least recently used. A request that
still holds an evicted pipeline finishes with it; the memory goes when the
last request lets go.
"""

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

PROFILE_METADATA_KEY = "semcom-profile"

P = TypeVar("P")


@dataclass(frozen=True)
class ClientProfile:
    """A name and the settings it overrides (field names of TransmitterSettings)."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


#: Profiles every transmitter knows (a YAML ``profiles:`` section adds or replaces entries).
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "server": {"captioner_precision": "fp32", "bandwidth_ratio": 1 / 6},
    "laptop": {"captioner_precision": "fp16", "bandwidth_ratio": 1 / 6},
    "phone": {"captioner_precision": "int8", "bandwidth_ratio": 1 / 12},
    "iot": {"captioner_precision": "int4-mixed", "bandwidth_ratio": 1 / 24},
    # The evaluation's baselines (docs/eval.md), so that a sweep through live services can ask for them.
    "directlygen": {"parts": "prompt"},
    "alledge": {"parts": "mask,prompt"},
    "humanonly": {"parts": "mask,key"},
    "deepjscc-image": {"parts": "key", "segmenter": "whole", "alpha": None, "key_codec": "deepjscc-afgdn"},
}


class PipelinePool(Generic[P]):
    """The default pipeline plus up to ``max_loaded`` profile pipelines, built on demand, LRU-evicted."""

    def __init__(
        self,
        default: P,
        profiles: Mapping[str, ClientProfile],
        build: Callable[[ClientProfile], P],
        max_loaded: int = 2,
    ) -> None:
        if max_loaded < 1:
            raise ValueError(f"max_loaded must be >= 1, got {max_loaded}")
        self.default = default
        self.profiles = dict(profiles)
        self._build = build
        self._max_loaded = max_loaded
        self._loaded: OrderedDict[str, P] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    @property
    def loaded(self) -> list[str]:
        """Names of the profile pipelines in memory, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def get(self, name: str | None) -> P:
        """The pipeline for profile ``name`` (None or "" = the service's own settings)."""
        if not name:
            return self.default
        if name not in self.profiles:
            raise ValueError(f"unknown client profile {name!r}; this transmitter has {', '.join(sorted(self.profiles))}")
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            building = self._building.setdefault(name, threading.Lock())
        with building:  # one build per profile; other profiles are not held up
            with self._lock:
                if name in self._loaded:
                    self._loaded.move_to_end(name)
                    return self._loaded[name]
            log.info("building the pipeline for client profile %r", name)
            pipeline = self._build(self.profiles[name])
            with self._lock:
                self._loaded[name] = pipeline
                while len(self._loaded) > self._max_loaded:
                    evicted, _ = self._loaded.popitem(last=False)
                    log.info("client profile %r evicted (at most %d loaded)", evicted, self._max_loaded)
            return pipeline


def profiles_from(builtin: Mapping[str, Mapping[str, Any]], extra: Mapping[str, Mapping[str, Any]],
                  allowed: set[str]) -> dict[str, ClientProfile]:
    """Built-in profiles updated by configured ones; only pipeline settings may be overridden."""
    merged = {**builtin, **extra}
    for name, overrides in merged.items():
        unknown = set(overrides) - allowed
        if unknown:
            raise ValueError(
                f"profile {name!r} sets {', '.join(sorted(unknown))}, which a profile cannot change; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
    return {name: ClientProfile(name, dict(overrides)) for name, overrides in merged.items()}
