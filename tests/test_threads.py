"""Tests of pixelforest._shared.threads: one place that decides thread counts."""

import pytest
from threadpoolctl import threadpool_info

from pixelforest._shared.threads import ENV_VAR, available_cores, limit_blas_threads, resolve_n_threads
from pixelforest.errors import InvalidParameterError


def test_explicit_value_wins_over_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert resolve_n_threads(1) == 1
    assert resolve_n_threads(5) == 5
    assert resolve_n_threads(None) == 3


def test_default_is_available_cores(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_n_threads() == available_cores() >= 1
    monkeypatch.setenv(ENV_VAR, "  ")
    assert resolve_n_threads() == available_cores()


def test_minus_one_means_all_cores_and_maximum_caps(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "-1")
    assert resolve_n_threads() == available_cores()
    assert resolve_n_threads(-1) == available_cores()
    assert resolve_n_threads(64, maximum=2) == 2
    assert resolve_n_threads(1, maximum=2) == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two", True])
def test_bad_values_name_the_fix(bad, monkeypatch):
    with pytest.raises(InvalidParameterError, match="n_threads.*positive integer"):
        resolve_n_threads(bad)
    monkeypatch.setenv(ENV_VAR, str(bad))
    with pytest.raises(InvalidParameterError, match=ENV_VAR):
        resolve_n_threads()


def test_limit_blas_threads_restores_limits():
    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with limit_blas_threads(1):
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
