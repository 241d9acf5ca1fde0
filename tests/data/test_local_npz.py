"""The ``npz`` dataset: images in every layout and range, feature rows, labels and clients
round-trip; every bad archive is a clear error naming the parameter and the value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.data.registry import create_dataset


def _save(tmp_path, name="d.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def _images(n=6, h=5, w=4, c=3, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "gray"])
def test_float_images_round_trip_in_every_layout(tmp_path, layout):
    x = _images(c=1 if layout == "gray" else 3)
    stored = {"nhwc": x, "nchw": x.transpose(0, 3, 1, 2), "gray": x[..., 0]}[layout]
    y = np.array([0, 1, 2, 0, 1, 2])
    ds = create_dataset("npz", path=_save(tmp_path, x=stored, y=y))
    assert ds.modality == "image" and ds.task == "classification" and ds.num_classes == 3
    assert ds.input_shape == (x.shape[3], 5, 4)
    assert torch.allclose(ds.images, torch.from_numpy(x.transpose(0, 3, 1, 2)))
    assert ds.labels.tolist() == y.tolist() and ds.clients is None


def test_uint8_images_are_divided_by_255_and_clients_are_coded(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 3, 6, 6), dtype=np.uint8)
    ds = create_dataset("npz", path=_save(tmp_path, x=x, y=np.array([1, 0, 1, 0]),
                                          clients=np.array([7, 3, 7, 10])), num_classes=4)
    assert torch.allclose(ds.images, torch.from_numpy(x / 255.0).float())
    assert ds.num_classes == 4
    assert ds.clients.tolist() == [1, 0, 1, 2] and ds.meta["client_names"] == (3, 7, 10)
    assert ds.subset([2, 3]).clients.tolist() == [1, 2]


def test_feature_rows_are_tabular_and_minmax_scaled(tmp_path):
    x = np.array([[0.0, 10.0, 5.0], [1.0, 30.0, 5.0], [0.5, 20.0, 5.0]])
    ds = create_dataset("npz", path=_save(tmp_path, x=x, y=np.array([0, 1, 1])))
    assert ds.modality == "tabular" and ds.input_shape == (1, 1, 3)
    assert torch.allclose(ds.images[:, 0, 0], torch.tensor([[0.0, 0, 0], [1, 1, 0], [0.5, 0.5, 0]]))
    assert ds.meta["feature_min"] == (0.0, 10.0, 5.0) and ds.meta["feature_max"] == (1.0, 30.0, 5.0)
    kept = create_dataset("npz", path=_save(tmp_path, "k.npz", x=x[:, :1], y=np.array([0, 1, 1])), scale="none")
    assert torch.allclose(kept.images.reshape(-1), torch.tensor([0.0, 1.0, 0.5]))


def test_named_arrays_and_limit(tmp_path):
    p = _save(tmp_path, images=_images(), targets=np.arange(6) % 2, who=np.array(list("aabbcc")))
    ds = create_dataset("npz", path=p, x_key="images", y_key="targets", clients_key="who", limit=4)
    assert len(ds) == 4 and ds.clients.tolist() == [0, 0, 1, 1] and ds.meta["client_names"] == ("a", "b", "c")


@pytest.mark.parametrize("arrays, params, match", [
    ({"x": _images(), "y": np.arange(6)}, {"x_key": "img"}, r"'x_key'.*arrays: x, y\).*'img'"),
    ({"x": _images(), "y": np.arange(5)}, {}, r"'y_key'.*one entry per item \(6 items\).*'5 entries'"),
    ({"x": _images(), "y": np.arange(6).reshape(3, 2)}, {}, r"'y_key'.*shape \(3, 2\)"),
    ({"x": _images(), "y": np.array([0, 1, 2, 3, 4, 9])}, {"num_classes": 5},
     r"'y_key'.*\[0, 5\).*item 5.*Got 9"),
    ({"x": _images(), "y": np.array([0, 1, -1, 0, 1, 0])}, {}, r"'y_key'.*out of range at item 2.*Got -1"),
    ({"x": _images(), "y": np.array([0, 1.5, 0, 0, 1, 0])}, {}, r"'y_key'.*fraction at item 1.*1\.5"),
    ({"x": _images() * 3, "y": np.arange(6)}, {}, r"'x_key'.*\[0, 1\].*values in \["),
    ({"x": np.full((2, 4, 4), 300, dtype=np.int64), "y": np.arange(2)}, {}, r"'x_key'.*\[0, 255\].*300"),
    ({"x": np.array([["a", "b"]] * 2), "y": np.arange(2)}, {}, r"'x_key'.*numeric array.*dtype <U1"),
    ({"x": np.array([[np.nan, 1.0]] * 2), "y": np.arange(2)}, {}, r"'x_key'.*finite.*nan"),
    ({"x": np.zeros((2, 3, 4, 3)), "y": np.arange(2)}, {}, r"'layout'.*ambiguous.*'auto'"),
    ({"x": np.zeros((2, 4, 4, 4, 1)), "y": np.arange(2)}, {}, r"'x_key'.*shape \(2, 4, 4, 4, 1\)"),
    ({"x": np.zeros((0, 4, 4)), "y": np.zeros(0, dtype=int)}, {}, r"'path'.*at least one item.*no items"),
    ({"x": _images(), "y": np.arange(6)}, {"clients_key": "owner"}, r"'clients_key'.*'owner'"),
    ({"x": _images(), "y": np.arange(6), "clients": np.arange(4)}, {}, r"'clients_key'.*'4 entries'"),
    ({"x": _images(), "y": np.arange(6)}, {"scale": "log"}, r"'scale'.*'log'"),
    ({"x": np.array([[2.0], [0.0]]), "y": np.arange(2)}, {"scale": "none"}, r"'scale'.*feature 0.*\[0, 2\]"),
])
def test_bad_archives_are_errors_naming_the_value(tmp_path, arrays, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        create_dataset("npz", path=_save(tmp_path, **arrays), **params)


def test_object_arrays_are_refused_never_unpickled(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, x=np.array([np.zeros(2), np.zeros(3)], dtype=object), y=np.arange(2))
    with pytest.raises(InvalidParameterError, match=r"'x_key'.*never loaded.*'x'"):
        create_dataset("npz", path=p)


def test_bad_paths(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'path'.*required.*None"):
        create_dataset("npz")
    with pytest.raises(InvalidParameterError, match=r"'path'.*existing file.*missing"):
        create_dataset("npz", path=tmp_path / "none.npz")
    (tmp_path / "d.csv").write_text("a\n1\n")
    with pytest.raises(InvalidParameterError, match=r"'path'.*ending in \.npz.*d\.csv"):
        create_dataset("npz", path=tmp_path / "d.csv")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidParameterError, match=r"'path'.*\.npz archive.*bad\.npz"):
        create_dataset("npz", path=tmp_path / "bad.npz")
