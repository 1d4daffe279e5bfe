"""Data: MNIST is verified before use, and a missing or corrupted file says how to fix it."""

import gzip
import shutil

import pytest
import torch
from hypothesis import given, settings, strategies as st

from hw1 import data
from hw1.data import DataError, get_target, load_mnist, sample_target, verify_mnist


@pytest.fixture
def mnist_copy(tmp_path):
    for name in data.MNIST_MD5:
        shutil.copy(data.MNIST_DIR / f"{name}.gz", tmp_path / f"{name}.gz")
    return tmp_path


def test_shipped_mnist_verifies():
    assert set(verify_mnist(data.MNIST_DIR)) == set(data.MNIST_MD5)


def test_missing_file_is_a_clear_error(mnist_copy):
    (mnist_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*missing.*HW1_MNIST_DIR"):
        verify_mnist(mnist_copy)


def test_corrupted_contents_fail_the_checksum(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="corrupted: md5"):
        verify_mnist(mnist_copy)


def test_truncated_archive_is_a_clear_error(mnist_copy):
    path = mnist_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="cannot be read"):
        verify_mnist(mnist_copy)


def test_uncompressed_copy_is_accepted(mnist_copy):
    p = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    (mnist_copy / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(p.read_bytes()))
    p.unlink()
    verify_mnist(mnist_copy)


def test_mnist_tensors_and_stratified_subset():
    x, y = load_mnist(False)
    assert x.shape == (10_000, 1, 28, 28) and y.shape == (10_000,)
    assert abs(float(x.mean())) < 0.1  # normalised
    xs, ys = load_mnist(True, limit=1000, seed=3)
    assert len(ys) == 1000
    counts = torch.bincount(ys, minlength=10).float() / 1000
    full = torch.tensor([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]) / 60_000
    assert torch.allclose(counts, full, atol=0.005)
    assert torch.equal(load_mnist(True, limit=1000, seed=3)[1], ys)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(data.TARGETS)), n=st.integers(2, 500), seed=st.none() | st.integers(0, 99))
def test_targets_stay_in_their_domain(name, n, seed):
    x, y = sample_target(name, n, seed=seed)
    lo, hi = get_target(name).domain
    assert x.shape == y.shape == (n, 1)
    assert float(x.min()) >= lo and float(x.max()) <= hi and torch.isfinite(y).all()


def test_sinc_is_one_at_zero_and_unknown_target_is_rejected():
    assert float(get_target("sinc").fn(torch.zeros(1))) == 1.0
    with pytest.raises(ValueError, match="unknown target"):
        get_target("tan")
