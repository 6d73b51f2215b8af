"""Client profiles: one pipeline per profile in use, built once, bounded, least recently used evicted."""

import threading
import time

import pytest

from gensemcom.transmitter.profiles import BUILTIN_PROFILES, ClientProfile, PipelinePool, profiles_from

PROFILES = {name: ClientProfile(name, {"bandwidth_ratio": 1 / n}) for name, n in (("a", 6), ("b", 12), ("c", 24))}


class CountingBuilder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, profile: ClientProfile) -> dict:
        time.sleep(self.delay_s)
        with self.lock:
            self.calls.append(profile.name)
        return {"profile": profile.name, **profile.overrides}


def test_no_profile_is_the_default_pipeline_and_builds_nothing() -> None:
    build = CountingBuilder()
    pool = PipelinePool("default", PROFILES, build)
    assert pool.get(None) == "default" and pool.get("") == "default"
    assert build.calls == [] and pool.loaded == []


def test_profiles_are_built_once_and_the_least_recently_used_is_evicted() -> None:
    build = CountingBuilder()
    pool = PipelinePool("default", PROFILES, build, max_loaded=2)
    assert pool.get("a")["bandwidth_ratio"] == pytest.approx(1 / 6)
    pool.get("b")
    pool.get("a")  # a is now the most recent
    pool.get("c")  # evicts b
    assert pool.loaded == ["a", "c"]
    pool.get("b")  # rebuilt, evicts a
    assert build.calls == ["a", "b", "c", "b"]
    assert pool.loaded == ["c", "b"]


def test_concurrent_requests_for_one_profile_build_it_once() -> None:
    build = CountingBuilder(delay_s=0.2)
    pool = PipelinePool("default", PROFILES, build)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pool.get("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert build.calls == ["a"]
    assert all(r is results[0] for r in results)


def test_unknown_profile_is_a_value_error_listing_the_known_ones() -> None:
    pool = PipelinePool("default", PROFILES, CountingBuilder())
    with pytest.raises(ValueError, match="unknown client profile 'zzz'.*a, b, c"):
        pool.get("zzz")


def test_configured_profiles_extend_the_builtin_ones_and_may_only_touch_pipeline_settings() -> None:
    from gensemcom.services import PROFILE_FIELDS as allowed

    profiles = profiles_from(BUILTIN_PROFILES, {"drone": {"bandwidth_ratio": 1 / 12}}, allowed)
    assert set(profiles) == set(BUILTIN_PROFILES) | {"drone"}
    assert profiles["iot"].overrides["captioner_precision"] == "int4-mixed"
    with pytest.raises(ValueError, match="port"):
        profiles_from(BUILTIN_PROFILES, {"evil": {"port": 1}}, allowed)
    with pytest.raises(ValueError, match="max_loaded"):
        PipelinePool("default", PROFILES, CountingBuilder(), max_loaded=0)
