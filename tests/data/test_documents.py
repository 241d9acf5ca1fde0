"""Generated receipts and forms (audit.data.generated.documents): masks, determinism, splits, the README picture."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from audit.data.registry import DATASETS, create_dataset
from audit.data.generated.document_gallery import document_gallery
from audit.data.generated.document_layouts import TEMPLATES
from audit.data.generated.documents import _generate, documents, template_split
from audit.core.errors import InvalidParameterError

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "documents.png"


def _fresh(size=32, num_items=16, seed=0, tamper_fraction=0.8, templates=4):
    """Generate without the memo, so two calls really run twice."""
    return _generate.__wrapped__(size, num_items, seed, tamper_fraction, templates)


def test_shapes_dtypes_ranges():
    ds = documents()
    n, s = 256, 64
    assert ds.images.shape == (n, 3, s, s) and ds.images.dtype == torch.float32
    assert 0.0 <= float(ds.images.min()) and float(ds.images.max()) <= 1.0
    assert ds.labels.shape == (n, s, s) and ds.labels.dtype == torch.long
    assert set(ds.labels.unique().tolist()) == {0, 1}
    assert ds.psi_masks.shape == (n, s, s) and ds.psi_masks.dtype == torch.bool
    assert ds.groups.shape == (n,) and ds.groups.dtype == torch.long
    assert (ds.task, ds.modality, ds.num_classes, ds.name) == ("segmentation", "image", 2, "documents")
    assert ds.input_shape == (3, s, s) and len(ds) == n
    assert len(ds.channel_mean) == 3 and min(ds.channel_std) >= 1e-3
    assert ds.channel_mean == pytest.approx(ds.images.mean(dim=(0, 2, 3)).tolist(), abs=1e-5)
    # paper documents: mostly bright pixels, with dark text
    assert 0.7 < float(ds.images.mean()) < 0.95 and float(ds.images.min()) < 0.2
    sub = ds.subset([0, 5])
    assert sub.psi_masks.shape == (2, s, s) and sub.groups.tolist() == ds.groups[[0, 5]].tolist()


def test_memoised_and_registered():
    assert documents() is documents(size=64.0) is create_dataset("documents")
    assert "documents" in DATASETS and "document-folder" in DATASETS
    with pytest.raises(InvalidParameterError, match="colour"):
        create_dataset("documents", colour=1)


def test_same_seed_bit_identical_and_seeds_differ():
    a, b, c = _fresh(seed=3), _fresh(seed=3), _fresh(seed=4)
    for name in ("images", "labels", "psi_masks", "groups"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.channel_mean == b.channel_mean and a.channel_std == b.channel_std
    assert not torch.equal(a.images, c.images)
    # the same seed gives the same documents at other sizes (same templates and tampered items)
    big = _fresh(size=64, seed=3)
    assert torch.equal(big.groups, a.groups)
    assert torch.equal(big.labels.flatten(1).any(1), a.labels.flatten(1).any(1))


def test_psi_masks_on_the_text_of_every_item():
    ds = documents()
    psi = ds.psi_masks
    frac = psi.float().mean(dim=(1, 2))
    assert bool((frac > 0).all()) and bool((frac < 0.35).all())
    # PSI boxes hold text on paper: bright on average, and with dark (ink) pixels inside
    grey = ds.images.mean(dim=1)
    for i in range(0, len(ds), 17):
        inside = grey[i][psi[i]]
        assert float(inside.mean()) > 0.5 and float(inside.min()) < float(inside.max()) - 0.25
    # and they stay off the image border
    assert not bool(psi[:, 0, :].any() or psi[:, -1, :].any() or psi[:, :, 0].any() or psi[:, :, -1].any())


def test_tamper_fraction_and_masks():
    ds = documents()
    tampered = ds.labels.flatten(1).any(1)
    assert int(tampered.sum()) == round(0.8 * len(ds))
    frac = ds.labels.float().mean(dim=(1, 2))[tampered]
    assert float(frac.min()) > 0 and float(frac.max()) < 0.4
    half = _fresh(num_items=40, tamper_fraction=0.5)
    assert int(half.labels.flatten(1).any(1).sum()) == 20
    assert int(_fresh(num_items=8, tamper_fraction=0.0).labels.sum()) == 0


def test_tamper_mask_is_the_changed_region():
    clean = _fresh(num_items=12, seed=5, tamper_fraction=0.0)
    forged = _fresh(num_items=12, seed=5, tamper_fraction=1.0)
    assert torch.equal(clean.groups, forged.groups) and torch.equal(clean.psi_masks, forged.psi_masks)
    for i in range(12):
        mask = forged.labels[i].bool()
        diff = (clean.images[i] != forged.images[i]).any(dim=0)
        assert bool(mask.any())
        assert not bool(diff[~mask].any()), f"item {i} changed outside its tamper mask"
        assert bool(diff[mask].any()), f"item {i}: nothing changed inside its tamper mask"


def test_all_templates_present():
    ds = documents()
    assert torch.bincount(ds.groups, minlength=len(TEMPLATES)).tolist() == [64] * 4
    two = _fresh(num_items=10, templates=2)
    assert sorted(two.groups.unique().tolist()) == [0, 1]


@pytest.mark.parametrize("num_clients", [1, 3, 4, 10, 64])
def test_template_split_properties(num_clients):
    groups = documents().groups
    parts = template_split(groups, num_clients, seed=0)
    assert len(parts) == num_clients and all(len(p) > 0 for p in parts)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(len(groups)))
    assert all(p.dtype == np.int64 for p in parts)
    if num_clients >= 4:  # one template per client
        assert all(len(np.unique(groups.numpy()[p])) == 1 for p in parts)
        assert {int(groups[p[0]]) for p in parts} == {0, 1, 2, 3}
    again = template_split(groups, num_clients, seed=0)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again))


def test_template_split_uneven_groups_and_errors():
    groups = torch.tensor([0] * 9 + [1])
    parts = template_split(groups, 5, seed=1)
    assert sorted(len(p) for p in parts) == [1, 2, 2, 2, 3]
    assert [p.tolist() for p in parts if 9 in p] == [[9]]
    with pytest.raises(InvalidParameterError, match="num_clients.*11"):
        template_split(groups, 11, seed=0)
    with pytest.raises(InvalidParameterError, match="num_clients"):
        template_split(groups, 0, seed=0)


@pytest.mark.parametrize("params, needle", [
    ({"size": 16}, "'size'.*16"), ({"size": 1024}, "'size'.*1024"), ({"size": "big"}, "'size'.*big"),
    ({"num_items": 0}, "'num_items'.*0"), ({"seed": -1}, "'seed'.*-1"),
    ({"tamper_fraction": 1.5}, "'tamper_fraction'.*1.5"), ({"tamper_fraction": float("nan")}, "'tamper_fraction'"),
    ({"templates": 0}, "'templates'.*0"), ({"templates": 5}, "'templates'.*5"), ({"templates": True}, "'templates'"),
])
def test_bad_params(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        documents(**params)


def test_gallery_picture_for_the_readme():
    ds = documents(size=128, seed=0)
    picture = document_gallery(ds, range(6))
    assert picture.mode == "RGB" and picture.width >= 3 * 256 and picture.height >= 2 * 256
    arr = np.asarray(picture)
    assert (arr == (30, 80, 230)).all(axis=2).any() and (arr == (220, 20, 20)).all(axis=2).any()
    # write docs/documents.png only when its pixels change, so a clean clone stays clean
    if DOCS_PNG.is_file():
        with Image.open(DOCS_PNG) as old:
            if old.size == picture.size and np.array_equal(np.asarray(old.convert("RGB")), arr):
                return
    DOCS_PNG.parent.mkdir(parents=True, exist_ok=True)
    picture.save(DOCS_PNG, optimize=True)
