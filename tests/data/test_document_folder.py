"""The local document-folder loader (audit.data.loaders.document_folder) on files the tests write."""

import numpy as np
import pytest
import torch
from PIL import Image

from audit.data.registry import create_dataset
from audit.data.loaders.document_folder import document_folder
from audit.core.errors import InvalidParameterError


def _write(root, stem, *, size=(40, 30), suffix=".png", mask=True, psi=None, mask_size=None):
    """An image whose left half is dark, a tamper mask on its top-left 10x10 block."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    w, h = size
    img = np.full((h, w, 3), 240, dtype=np.uint8)
    img[:, : w // 2] = 20
    Image.fromarray(img).save(root / "images" / f"{stem}{suffix}")
    if mask:
        mw, mh = mask_size or size
        m = np.zeros((mh, mw), dtype=np.uint8)
        m[:10, :10] = 255
        Image.fromarray(m).save(root / "masks" / f"{stem}.png")
    if psi is not None:
        (root / "psi").mkdir(exist_ok=True)
        p = np.zeros((h, w, 3), dtype=np.uint8)
        p[-6:, -6:, 2] = psi  # a blue RGB mask: nonzero channel = PSI
        Image.fromarray(p).save(root / "psi" / f"{stem}.png")


def test_happy_path_without_psi(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path, "b", suffix=".jpg")
    d = create_dataset("document-folder", path=str(tmp_path), size=16)
    assert d.images.shape == (2, 3, 16, 16) and d.images.dtype == torch.float32
    assert d.labels.shape == (2, 16, 16) and d.labels.dtype == torch.long
    assert (d.task, d.num_classes, d.psi_masks) == ("segmentation", 2, None)
    assert d.groups.tolist() == [0, 0]
    # the 40x30 image is centre-cropped to 30x30 (x 5..34): the mask block x, y < 10 keeps
    # x 5..9 -> crop columns 0..4, rows 0..9; nearest to 16 px: columns 0..2, rows 0..4
    lab = d.labels[0].numpy()
    assert set(np.unique(lab)) == {0, 1} and lab.sum() == 15 and lab[:5, :3].all()
    assert float(d.images[0, :, 8, 2].mean()) < 0.2 and float(d.images[0, :, 8, 14].mean()) > 0.8
    assert min(d.channel_std) >= 1e-3


def test_happy_path_with_psi_and_limit(tmp_path):
    for stem in ("x", "y", "z"):
        _write(tmp_path, stem, size=(32, 32), psi=200)
    d = document_folder(path=tmp_path, size=32, limit=2)
    assert len(d) == 2 and d.psi_masks.shape == (2, 32, 32) and d.psi_masks.dtype == torch.bool
    assert int(d.psi_masks[0].sum()) == 36 and bool(d.psi_masks[0, -1, -1])
    assert int(d.labels[1].sum()) == 100


@pytest.mark.parametrize("case, needle", [
    ("missing", "missing"),
    ("no-images-folder", "images"),
    ("no-masks-folder", "masks"),
    ("no-images", "no images found"),
    ("no-mask", "has no tamper mask"),
    ("no-psi", "has no PSI mask"),
    ("corrupt-image", "unreadable or corrupt"),
    ("corrupt-mask", "unreadable or corrupt"),
    ("mask-size", "same size"),
    ("same-stem", "share the stem"),
])
def test_errors_name_the_path(tmp_path, case, needle):
    root = tmp_path / "docs"
    culprit = root
    if case == "missing":
        pass
    elif case == "no-images-folder":
        (root / "masks").mkdir(parents=True)
    elif case == "no-masks-folder":
        (root / "images").mkdir(parents=True)
    elif case == "no-images":
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        (root / "images" / "notes.txt").write_text("not an image")
    elif case == "no-mask":
        _write(root, "a", mask=False)
        culprit = root / "masks" / "a.png"
    elif case == "no-psi":
        _write(root, "a", psi=255)
        _write(root, "b")
        culprit = root / "psi" / "b.png"
    elif case == "corrupt-image":
        _write(root, "a")
        culprit = root / "images" / "a.png"
        culprit.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    elif case == "corrupt-mask":
        _write(root, "a")
        culprit = root / "masks" / "a.png"
        culprit.write_bytes(b"garbage")
    elif case == "mask-size":
        _write(root, "a", mask_size=(20, 20))
        culprit = root / "masks" / "a.png"
    elif case == "same-stem":
        _write(root, "a")
        _write(root, "a", suffix=".jpg")
        culprit = root / "images" / "a.png"
    with pytest.raises(InvalidParameterError, match=needle) as info:
        document_folder(path=str(root), size=16)
    assert str(culprit) in str(info.value)


@pytest.mark.parametrize("params, needle", [
    ({"path": None}, "'path'"), ({"size": 2}, "'size'"), ({"limit": 0}, "'limit'"), ({"colour": 1}, "colour"),
])
def test_bad_params(tmp_path, params, needle):
    _write(tmp_path, "a")
    params = {"path": str(tmp_path), **params}
    with pytest.raises(InvalidParameterError, match=needle):
        create_dataset("document-folder", **params)
