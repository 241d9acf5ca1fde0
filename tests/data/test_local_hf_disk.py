"""The ``hf-disk`` dataset: Hugging Face datasets saved with ``save_to_disk`` round-trip as
images (PIL or arrays), feature rows or texts, with clients; every bad input is a clear
error naming the parameter and the value."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.data.registry import create_dataset
from audit.models.text_lm import ByteTokenizer

datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()


def _save(tmp_path, data, features=None, name="ds"):
    p = tmp_path / name
    datasets.Dataset.from_dict(data, features=None if features is None else datasets.Features(features)).save_to_disk(str(p))
    return p


def test_pil_images_with_class_labels_and_clients(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    p = _save(tmp_path, {"img": [Image.fromarray(a) for a in pixels], "y": [0, 2, 1], "site": ["b", "a", "b"]},
              {"img": datasets.Image(), "y": datasets.ClassLabel(names=["cat", "dog", "owl", "emu"]),
               "site": datasets.Value("string")})
    ds = create_dataset("hf-disk", path=p, image="img", label="y", client_column="site", size=8)
    assert ds.modality == "image" and ds.input_shape == (3, 8, 8) and ds.num_classes == 4
    assert torch.allclose(ds.images, torch.from_numpy(pixels.transpose(0, 3, 1, 2) / 255.0).float())
    assert ds.labels.tolist() == [0, 2, 1] and ds.meta["class_names"] == ("cat", "dog", "owl", "emu")
    assert ds.clients.tolist() == [1, 0, 1] and ds.meta["client_names"] == ("a", "b")


def test_array_images_and_a_split_of_a_dataset_dict(tmp_path):
    x = np.random.default_rng(1).random((4, 1, 5, 5)).astype(np.float32)
    train = datasets.Dataset.from_dict({"x": x.tolist(), "y": [0, 1, 0, 1]},
                                       features=datasets.Features({"x": datasets.Array3D((1, 5, 5), "float32"),
                                                                   "y": datasets.Value("int64")}))
    p = tmp_path / "dd"
    datasets.DatasetDict({"train": train, "test": train.select([0])}).save_to_disk(str(p))
    ds = create_dataset("hf-disk", path=p, split="train", image="x", label="y", limit=3)
    assert ds.input_shape == (1, 5, 5) and len(ds) == 3
    assert torch.allclose(ds.images, torch.from_numpy(x[:3]))
    with pytest.raises(InvalidParameterError, match=r"'split'.*splits: train, test\).*None"):
        create_dataset("hf-disk", path=p, image="x", label="y")


def test_feature_columns_are_tabular(tmp_path):
    p = _save(tmp_path, {"a": [0.0, 2.0, 4.0], "b": [1, 1, 0], "name": ["x", "y", "z"], "label": [1, 0, 1],
                         "c": [5, 5, 6]})
    ds = create_dataset("hf-disk", path=p, label="label", client_column="c")
    assert ds.modality == "tabular" and ds.meta["features"] == ("a", "b")
    assert torch.allclose(ds.images[:, 0, 0], torch.tensor([[0.0, 1.0], [0.5, 1.0], [1.0, 0.0]]))
    assert ds.labels.tolist() == [1, 0, 1] and ds.clients.tolist() == [0, 0, 1]
    one = create_dataset("hf-disk", path=p, label="label", features="b", scale="none")
    assert one.meta["features"] == ("b",)


def test_text_column_for_language_modeling(tmp_path):
    p = _save(tmp_path, {"text": ["hi there", "bye"], "user": [3, 1]})
    ds = create_dataset("hf-disk", path=p, text="text", client_column="user", length=12)
    ids, targets = ByteTokenizer().batch_encode(["hi there", "bye"], 12)
    assert ds.task == "language-modeling" and ds.modality == "text"
    assert ds.images.equal(ids) and ds.labels.equal(targets) and ds.clients.tolist() == [1, 0]


@pytest.mark.parametrize("params, match", [
    ({}, r"'label'.*required.*None"),
    ({"label": "nope"}, r"'label'.*columns: text, y, f, img\).*'nope'"),
    ({"text": "text", "label": "y"}, r"'label'.*None with text=.*'y'"),
    ({"text": "y"}, r"'text'.*strings \('y' holds 0 at row 0\).*'y'"),
    ({"label": "y", "image": "img"}, r"'image'.*one shape.*'img'"),
    ({"label": "y", "image": "f", "features": "f"}, r"'features'.*None with image=.*'f'"),
    ({"label": "y", "features": "text"}, r"'features'.*'text' holds a non-number at row 0.*'a'"),
    ({"label": "y", "num_classes": 1}, r"'label'.*\[0, 1\).*row 1.*Got 1"),
    ({"label": "y", "client_column": "who"}, r"'client_column'.*'who'"),
    ({"label": "y", "split": "train"}, r"'split'.*without splits.*'train'"),
])
def test_bad_columns_are_errors_naming_the_value(tmp_path, params, match):
    p = _save(tmp_path, {"text": ["a", "b"], "y": [0, 1], "f": [0.5, 1.0], "img": [[[0.0]], [[0.0, 1.0]]]})
    with pytest.raises(InvalidParameterError, match=match):
        create_dataset("hf-disk", path=p, **params)


def test_bad_paths_and_empty_data(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'path'.*required"):
        create_dataset("hf-disk")
    with pytest.raises(InvalidParameterError, match=r"'path'.*save_to_disk"):
        create_dataset("hf-disk", path=tmp_path, label="y")
    empty = _save(tmp_path, {"y": []}, {"y": datasets.Value("int64")}, name="empty")
    with pytest.raises(InvalidParameterError, match=r"'path'.*at least one item"):
        create_dataset("hf-disk", path=empty, label="y")


def test_without_datasets_names_the_hf_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InvalidParameterError, match=r"fedaudit\[hf\].*'datasets'"):
        create_dataset("hf-disk", path=tmp_path, label="y")
