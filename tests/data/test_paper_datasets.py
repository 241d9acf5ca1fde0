"""The papers' datasets on user paths (issue 24, item 4): T-SROIE, DocTamper, OCT-C8,
Kvasir v2 and M&Ms, each read from a tiny fake copy in its released layout that the test
writes (tests/data/paper_copies.py); every malformed copy is an error naming the bad file."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from audit.core.errors import InvalidParameterError
from audit.data.loaders.kvasir_v2 import CLASSES as KVASIR_CLASSES
from audit.data.loaders.oct_c8 import CLASSES as OCT_CLASSES
from audit.data.registry import create_dataset
from paper_copies import (doctamper_items, encoded, mnms_volumes, write_kvasir,
                          write_lmdb, write_mnms, write_nifti, write_oct_c8, write_tsroie)


def _fails(name, culprit, needle=None, **params):
    with pytest.raises(InvalidParameterError, match=needle) as info:
        create_dataset(name, **params)
    assert str(culprit) in str(info.value), info.value
    return str(info.value)


# ---- T-SROIE ---------------------------------------------------------------------------

def test_tsroie_masks_only_the_tampered_text_and_splits(tmp_path):
    write_tsroie(tmp_path, "train")
    write_tsroie(tmp_path, "test", names=("X0100", "X0101", "X0102"))
    d = create_dataset("t-sroie", path=str(tmp_path), size=30)
    assert d.images.shape == (2, 3, 30, 30) and d.labels.shape == (2, 30, 30)
    assert (d.task, d.num_classes, d.labels.dtype) == ("segmentation", 2, torch.long)
    # 40x30 -> centre crop x 5..34: the quad x 5..15, y 0..10 (edges filled) is crop 0..10 square
    lab = d.labels[0].numpy()
    assert lab.sum() == 121 and lab[:11, :11].all() and lab[20:26, 15:26].sum() == 0
    assert create_dataset("t-sroie", path=str(tmp_path), split="test", size=16, limit=2).images.shape[0] == 2
    assert len(create_dataset("t-sroie", path=str(tmp_path), split="test")) == 3


def test_tsroie_bbox_fallback_and_category_by_name(tmp_path):
    ann = write_tsroie(tmp_path, category=7)
    doc = json.loads(ann.read_text())
    doc["categories"][1]["id"] = 7  # the tampered category is found by its name text_temp
    doc["annotations"][0]["segmentation"] = []  # -> its bbox [5, 0, 10, 10]
    ann.write_text(json.dumps(doc))
    d = create_dataset("t-sroie", path=str(tmp_path), size=30)
    assert int(d.labels[0].sum()) == 121 and int(d.labels[1].sum()) == 121


@pytest.mark.parametrize("case", ["no-split-folder", "no-json", "two-jsons", "bad-json", "not-coco",
                                  "missing-image", "corrupt-image", "bad-polygon", "no-images"])
def test_tsroie_malformed_copies_name_the_file(tmp_path, case):
    ann = write_tsroie(tmp_path)
    doc = json.loads(ann.read_text())
    culprit = ann
    if case == "no-split-folder":
        culprit = tmp_path / "test"
        (tmp_path / "sroie_test_1011.json").write_text(ann.read_text())
        _fails("t-sroie", culprit, "test/ folder", path=str(tmp_path), split="test")
        return
    if case == "no-json":
        ann.unlink()
    elif case == "two-jsons":
        (tmp_path / "sroie_train_old.json").write_text("{}")
    elif case == "bad-json":
        ann.write_text("{not json")
    elif case == "not-coco":
        ann.write_text(json.dumps({"annotations": []}))
    elif case == "missing-image":
        culprit = tmp_path / "train" / "X0002.jpg"
        culprit.unlink()
    elif case == "corrupt-image":
        culprit = tmp_path / "train" / "X0001.jpg"
        culprit.write_bytes(b"\xff\xd8 not a jpeg")
    elif case == "bad-polygon":
        doc["annotations"][0]["segmentation"] = [5, 0, 15]
    elif case == "no-images":
        doc["images"] = []
    if case in ("bad-polygon", "no-images"):
        ann.write_text(json.dumps(doc))
    _fails("t-sroie", culprit, path=str(tmp_path))


# ---- DocTamper -------------------------------------------------------------------------

def test_doctamper_reads_an_lmdb_part_directly_or_by_split(tmp_path):
    write_lmdb(tmp_path / "DocTamperV1-TestingSet", doctamper_items(3))
    write_lmdb(tmp_path / "DocTamperV1-TrainingSet", doctamper_items(5))
    d = create_dataset("doctamper", path=str(tmp_path / "DocTamperV1-TestingSet"), size=30)
    assert d.images.shape == (3, 3, 30, 30) and d.labels.shape == (3, 30, 30)
    assert (d.task, d.num_classes) == ("segmentation", 2)
    # the 10x10 block at x 0..9 of a 40x30 image: crop x 5..34 keeps columns 5..9
    assert [int(m.sum()) for m in d.labels] == [50, 50, 50] and bool(d.labels[1, :10, :5].all())
    assert len(create_dataset("doctamper", path=str(tmp_path), split="test")) == 3
    assert len(create_dataset("doctamper", path=str(tmp_path))) == 5  # split train by default
    assert len(create_dataset("doctamper", path=str(tmp_path), limit=2, size=16)) == 2
    with pytest.raises(InvalidParameterError, match="'split'"):
        create_dataset("doctamper", path=str(tmp_path / "DocTamperV1-TestingSet"), split="test")


@pytest.mark.parametrize("case", ["no-part", "corrupt-db", "no-count", "corrupt-image", "no-label",
                                  "mask-size", "corrupt-mask"])
def test_doctamper_malformed_copies_name_the_file(tmp_path, case):
    db = tmp_path / "DocTamperV1-FCD"
    entries = doctamper_items(2)
    needle = {"corrupt-image": "image-000000001", "no-label": "label-000000000",
              "mask-size": "label-000000000", "corrupt-mask": "label-000000001"}.get(case)
    if case == "no-part":
        write_lmdb(tmp_path / "DocTamperV1-TestingSet", entries)
        _fails("doctamper", db / "data.mdb", "split='fcd'", path=str(tmp_path), split="fcd")
        return
    if case == "corrupt-db":
        db.mkdir()
        (db / "data.mdb").write_bytes(b"not an lmdb file" * 64)
    else:
        if case == "no-count":
            del entries[b"num-samples"]
        elif case == "corrupt-image":
            entries[b"image-000000001"] = b"\xff\xd8 broken"
        elif case == "no-label":
            del entries[b"label-000000000"]
        elif case == "mask-size":
            entries[b"label-000000000"] = encoded(np.zeros((8, 8), np.uint8), "PNG")
        elif case == "corrupt-mask":
            entries[b"label-000000001"] = b"\x89PNG broken"
        write_lmdb(db, entries)
    _fails("doctamper", db / "data.mdb", needle, path=str(db))


def test_doctamper_without_lmdb_says_what_to_install(tmp_path, monkeypatch):
    write_lmdb(tmp_path, doctamper_items(1))
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(InvalidParameterError, match=r"fedaudit\[doctamper\]"):
        create_dataset("doctamper", path=str(tmp_path))


# ---- OCT-C8 and Kvasir v2 --------------------------------------------------------------

def test_oct_c8_labels_splits_and_balanced_limit(tmp_path):
    write_oct_c8(tmp_path, per_class=2, rename={"DRUSEN": "drusen"})  # folder case is free
    d = create_dataset("oct-c8", path=str(tmp_path), size=8)
    assert d.images.shape == (16, 3, 8, 8) and d.task == "classification" and d.num_classes == 8
    assert d.labels.tolist() == list(range(8)) * 2  # interleaved over the classes
    assert d.meta["class_names"] == OCT_CLASSES
    grey = d.images[:8, 0, 4, 4]  # class k was written at grey level 20 + 25 k
    assert torch.allclose(grey, (20 + 25 * torch.arange(8)) / 255.0, atol=0.03)
    assert sorted(create_dataset("oct-c8", path=str(tmp_path), split="val", limit=8).labels.tolist()) == list(range(8))


def test_kvasir_v2_reads_its_eight_class_folders(tmp_path):
    write_kvasir(tmp_path, per_class=1)
    d = create_dataset("kvasir-v2", path=str(tmp_path), size=16, limit=5)
    assert d.images.shape == (5, 3, 16, 16) and d.labels.tolist() == [0, 1, 2, 3, 4]
    assert d.meta["class_names"] == KVASIR_CLASSES and d.num_classes == 8


@pytest.mark.parametrize("name", ["oct-c8", "kvasir-v2"])
@pytest.mark.parametrize("case", ["unknown-class", "missing-class", "corrupt-image", "no-images"])
def test_class_folder_malformed_copies_name_the_file(tmp_path, name, case):
    classes = OCT_CLASSES if name == "oct-c8" else KVASIR_CLASSES
    root = tmp_path / "train" if name == "oct-c8" else tmp_path
    (write_oct_c8 if name == "oct-c8" else write_kvasir)(tmp_path, per_class=0 if case == "no-images" else 1)
    culprit = root
    if case == "unknown-class":
        culprit = root / "glaucoma"
        culprit.mkdir()
    elif case == "missing-class":
        culprit = root / classes[3]
        for f in culprit.iterdir():
            f.unlink()
        culprit.rmdir()
    elif case == "corrupt-image":
        culprit = root / classes[5] / "broken.jpg"
        culprit.write_bytes(b"\xff\xd8 not a jpeg")
    _fails(name, culprit, path=str(tmp_path))


def test_oct_c8_missing_split_folder_is_named(tmp_path):
    write_oct_c8(tmp_path, splits=("train",))
    _fails("oct-c8", tmp_path / "test", "test/ folder", path=str(tmp_path), split="test")


# ---- M&Ms ------------------------------------------------------------------------------

def test_mnms_labelled_slices_classes_and_vendor_clients(tmp_path):
    write_mnms(tmp_path)
    d = create_dataset("mnms", path=str(tmp_path), size=10)
    # per subject: ED slice 1 (LV + MYO) and ES slice 2 (RV); the other slices are unlabelled
    assert d.images.shape == (4, 1, 10, 10) and d.labels.shape == (4, 10, 10)
    assert (d.task, d.num_classes) == ("segmentation", 4)
    assert float(d.images.min()) >= 0 and float(d.images.max()) <= 1
    # 12x10 slices -> centre crop rows 1..10: LV rows 2..5 -> 1..4, cols 2..5: 16 pixels
    assert [int((d.labels[0] == c).sum()) for c in (1, 2, 3)] == [16, 8, 0]
    assert [int((d.labels[1] == c).sum()) for c in (1, 2, 3)] == [0, 0, 9]
    assert d.clients.tolist() == [0, 0, 1, 1] and d.meta["client_names"] == ("A", "B")
    assert d.meta["items"]["phase"] == ("ED", "ES", "ED", "ES") and d.meta["items"]["slice"] == (1, 2, 1, 2)
    assert d.meta["items"]["subject"][2] == "B0S3X1" and d.meta["class_names"][3] == "RV"
    sub = d.subset([3])
    assert sub.meta["items"]["subject"] == ("B0S3X1",) and sub.clients.tolist() == [1]


def test_mnms_splits_limit_and_info_param(tmp_path):
    write_mnms(tmp_path)
    write_mnms(tmp_path, subjects=(("D7Q1W2", "D"),), folder=("Validation",))
    csv = tmp_path / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
    csv.write_text(csv.read_text() + "A1K2P5,Siemens,A,1,0,2,NOR\nB0S3X1,Philips,B,2,0,2,NOR\n")
    moved = tmp_path.parent / "info.csv"
    csv.rename(moved)
    v = create_dataset("mnms", path=str(tmp_path), split="val", info=str(moved), size=8)
    assert len(v) == 2 and v.meta["client_names"] == ("D",)
    assert len(create_dataset("mnms", path=str(tmp_path), info=str(moved), size=8, limit=3)) == 3


def test_mnms_same_ed_and_es_frame_is_read_once(tmp_path):
    write_mnms(tmp_path, subjects=(("A1K2P5", "A"),), ed=1, es=1)
    d = create_dataset("mnms", path=str(tmp_path), size=8)
    assert d.meta["items"]["phase"] == ("ED", "ED") and d.meta["items"]["slice"] == (1, 2)


@pytest.mark.parametrize("case, needle", [
    ("corrupt-image", "unreadable or corrupt"), ("corrupt-labels", "unreadable or corrupt"),
    ("no-labels", "has no volume"), ("shape", "must match"), ("label-value", "classes 0..3"),
    ("three-d", "4-D"), ("frame", "frames"), ("not-in-csv", "no row"), ("no-csv", "CSV"),
    ("csv-column", "'Vendor' column"), ("csv-frame", "non-integer"), ("csv-vendor", "empty"),
    ("no-split", "Training/Labeled"),
    ("unlabelled", "no subject"),
])
def test_mnms_malformed_copies_name_the_file(tmp_path, case, needle):
    csv = write_mnms(tmp_path)
    sub = tmp_path / "Training" / "Labeled" / "B0S3X1"
    sa, gt = sub / "B0S3X1_sa.nii.gz", sub / "B0S3X1_sa_gt.nii.gz"
    culprit = {"corrupt-image": sa, "frame": sa, "three-d": sa, "not-in-csv": sub,
               "no-csv": tmp_path, "csv-column": csv, "csv-frame": csv, "csv-vendor": csv,
               "no-split": tmp_path / "Training" / "Labeled", "unlabelled": tmp_path}.get(case, gt)
    if case == "corrupt-image":
        sa.write_bytes(b"garbage, not gzip")
    elif case == "corrupt-labels":
        gt.write_bytes(sa.read_bytes()[:40])
    elif case == "no-labels":
        gt.unlink()
    elif case == "shape":
        write_nifti(gt, mnms_volumes(shape=(12, 10, 3, 5))[1])
    elif case == "label-value":
        bad = mnms_volumes()[1]
        bad[0, 0, 0, 0] = 7
        write_nifti(gt, bad)
    elif case == "three-d":
        write_nifti(sa, mnms_volumes()[0][..., 0])
    elif case == "frame":
        csv.write_text(csv.read_text().replace("B0S3X1,VendorB,B,2,0,2", "B0S3X1,VendorB,B,2,0,9"))
    elif case == "not-in-csv":
        csv.write_text(csv.read_text().replace("B0S3X1,", "Z0Z0Z0,"))
    elif case == "no-csv":
        csv.unlink()
    elif case == "csv-column":
        csv.write_text(csv.read_text().replace(",Vendor,", ",Maker,"))
    elif case == "csv-frame":
        csv.write_text(csv.read_text().replace("B0S3X1,VendorB,B,2,0,2", "B0S3X1,VendorB,B,2,zero,2"))
    elif case == "csv-vendor":
        csv.write_text(csv.read_text().replace("B0S3X1,VendorB,B,", "B0S3X1,VendorB,,"))
    elif case == "no-split":
        for f in sorted((tmp_path / "Training" / "Labeled").rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (tmp_path / "Training" / "Labeled").rmdir()
    elif case == "unlabelled":
        for f in (tmp_path / "Training" / "Labeled").rglob("*_gt.nii.gz"):
            write_nifti(f, np.zeros((12, 10, 3, 4), np.int16))
    _fails("mnms", culprit, needle, path=str(tmp_path))


def test_mnms_without_nibabel_says_what_to_install(tmp_path, monkeypatch):
    write_mnms(tmp_path)
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(InvalidParameterError, match=r"fedaudit\[medical\]"):
        create_dataset("mnms", path=str(tmp_path))


@pytest.mark.parametrize("name, params, needle", [
    ("t-sroie", {"split": "val"}, "'split'"), ("doctamper", {"split": "valid"}, "'split'"),
    ("oct-c8", {"size": 2}, "'size'"), ("kvasir-v2", {"limit": 0}, "'limit'"),
    ("mnms", {"split": "Training"}, "'split'"), ("mnms", {"colour": 1}, "colour"),
    ("kvasir-v2", {"path": None}, "'path'"),
])
def test_bad_params(tmp_path, name, params, needle):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(InvalidParameterError, match=needle):
        create_dataset(name, **{"path": str(tmp_path), **params})
