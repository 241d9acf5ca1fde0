"""Embedded datasets and local loaders (on files the tests write)."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from audit.data.registry import create_dataset
from audit.core.errors import InvalidParameterError


@pytest.mark.parametrize(
    "name, shape, classes",
    [("natural-32", (3, 32, 32), 8), ("natural-64", (3, 64, 64), 8), ("lfw", (1, 25, 25), 2), ("digits", (1, 8, 8), 10)],
)
def test_embedded_shapes_and_ranges(name, shape, classes):
    d = create_dataset(name)
    assert d.input_shape == shape and d.num_classes == classes
    assert d.images.dtype == torch.float32 and 0 <= float(d.images.min()) and float(d.images.max()) <= 1
    assert len(d.channel_mean) == shape[0] and min(d.channel_std) > 0
    assert d.mean_image().shape == shape


def test_natural_order_and_determinism():
    a, b = create_dataset("natural-32"), create_dataset("natural-32")
    assert len(a) >= 24 and torch.equal(a.images, b.images)
    assert a.labels[:8].tolist() == list(range(8))


def test_limit_and_size():
    assert len(create_dataset("digits", limit=5)) == 5
    assert create_dataset("lfw", size=32).input_shape == (1, 32, 32)
    assert create_dataset("lfw").labels[:2].tolist() == [1, 0]


@pytest.mark.parametrize("params, needle", [({"limit": 0}, "limit"), ({"size": 1}, "size"), ({"colour": 1}, "colour")])
def test_bad_params(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        create_dataset("digits", **params)


def _png(path, colour):
    Image.new("RGB", (40, 30), colour).save(path)


def test_image_folder_class_layout(tmp_path):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            _png(tmp_path / cls / f"{i}.png", colour)
    d = create_dataset("image-folder", path=str(tmp_path), size=16)
    assert d.input_shape == (3, 16, 16) and d.num_classes == 2
    assert d.labels.tolist() == [0, 0, 1, 1]
    assert float(d.images[0, 0].mean()) == pytest.approx(1.0) and float(d.images[2, 2].mean()) == pytest.approx(1.0)


def test_image_folder_flat_layout(tmp_path):
    _png(tmp_path / "a.png", (0, 255, 0))
    d = create_dataset("image-folder", path=str(tmp_path))
    assert len(d) == 1 and d.num_classes == 1


def test_image_folder_errors(tmp_path):
    with pytest.raises(InvalidParameterError, match="missing"):
        create_dataset("image-folder", path=str(tmp_path / "none"))
    with pytest.raises(InvalidParameterError, match="no images"):
        create_dataset("image-folder", path=str(tmp_path))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InvalidParameterError, match="bad.png"):
        create_dataset("image-folder", path=str(tmp_path))


def _cifar_dir(tmp_path, n=5):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    data = np.arange(n * 3072, dtype=np.int64).astype(np.uint8).reshape(n, 3072)
    with open(root / "test_batch", "wb") as fh:
        pickle.dump({b"data": data, b"labels": list(range(n))}, fh)
    return root, data


def test_cifar10_test_batch(tmp_path):
    root, data = _cifar_dir(tmp_path)
    d = create_dataset("cifar10", path=str(root))
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10 and len(d) == 5
    assert d.labels.tolist() == [0, 1, 2, 3, 4]
    assert float(d.images[1, 2, 0, 1]) == pytest.approx(data[1, 2048 + 1] / 255.0)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/fedaudit-pwned",))


def test_cifar10_refuses_malicious_pickle(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    with open(root / "test_batch", "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, fh)
    with pytest.raises(InvalidParameterError, match="unsafe"):
        create_dataset("cifar10", path=str(root))
    import os

    assert not os.path.exists("/tmp/fedaudit-pwned")


def test_cifar10_missing_and_corrupt(tmp_path):
    with pytest.raises(InvalidParameterError, match="missing"):
        create_dataset("cifar10", path=str(tmp_path / "nope"))
    (tmp_path / "test_batch").write_bytes(b"truncated")
    with pytest.raises(InvalidParameterError, match="corrupt"):
        create_dataset("cifar10", path=str(tmp_path))
    with pytest.raises(InvalidParameterError, match="split"):
        create_dataset("cifar10", path=str(tmp_path), split="valid")
