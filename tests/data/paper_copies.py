"""Tiny fake copies of the papers' datasets in their released on-disk layouts, written by the
tests into a temporary folder (nothing is downloaded): T-SROIE, DocTamper, OCT-C8,
Kvasir v2 and M&Ms. Each writer returns what the test needs to check the loaded data."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from audit.data.loaders.kvasir_v2 import CLASSES as KVASIR_CLASSES
from audit.data.loaders.oct_c8 import CLASSES as OCT_CLASSES

#: T-SROIE's tampered quadrilateral: x 5..15, y 0..10 of a 40x30 receipt
TSROIE_QUAD = [5, 0, 15, 0, 15, 10, 5, 10]


def receipt(w: int = 40, h: int = 30) -> np.ndarray:
    """A light receipt with a dark text line in its left half."""
    img = np.full((h, w, 3), 230, dtype=np.uint8)
    img[4:12, 2: w // 2] = 20
    return img


def write_tsroie(root, split: str = "train", names=("X0001", "X0002"), *, category: int = 2):
    """``root/<split>/<name>.jpg`` + ``root/sroie_<split>_1011.json`` (COCO style): each receipt
    has one tampered quadrilateral (category ``category``) and one authentic text line."""
    (root / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, name in enumerate(names, start=1):
        Image.fromarray(receipt()).save(root / split / f"{name}.jpg", quality=95)
        images.append({"id": i, "file_name": f"{name}.jpg", "height": 30, "width": 40})
        annotations.append({"id": 2 * i - 1, "image_id": i, "category_id": category,
                            "segmentation": TSROIE_QUAD, "bbox": [5, 0, 10, 10], "iscrowd": 0})
        annotations.append({"id": 2 * i, "image_id": i, "category_id": 1,
                            "segmentation": [[20, 20, 30, 20, 30, 25, 20, 25]], "iscrowd": 0})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "text"}, {"id": 2, "name": "text_temp"}]}
    path = root / f"sroie_{split}_1011.json"
    path.write_text(json.dumps(doc))
    return path


def encoded(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def doctamper_items(n: int = 3, w: int = 40, h: int = 30) -> dict[bytes, bytes]:
    """The LMDB entries of a DocTamper part of ``n`` items: JPEG images, PNG masks with the
    top-left 10x10 block tampered (values 1 in even items, 255 in odd ones, as both occur)."""
    entries = {b"num-samples": str(n).encode()}
    for i in range(n):
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[:10, :10] = 1 if i % 2 == 0 else 255
        entries[f"image-{i:09d}".encode()] = encoded(receipt(w, h), "JPEG")
        entries[f"label-{i:09d}".encode()] = encoded(mask, "PNG")
    return entries


def write_lmdb(folder, entries: dict[bytes, bytes]):
    """An LMDB database (``data.mdb`` + ``lock.mdb``) in ``folder`` holding ``entries``."""
    import lmdb

    folder.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, v in entries.items():
            txn.put(k, v)
    env.close()
    return folder


def write_class_folders(root, classes, per_class: int = 2, *, w: int = 12, h: int = 10, rename=None):
    """``root/<class>/<class>_<i>.jpg``, each class a different grey level; ``rename`` maps a
    class to the folder name written for it."""
    for k, c in enumerate(classes):
        folder = root / (rename or {}).get(c, c)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.full((h, w, 3), 20 + 25 * k, dtype=np.uint8)
            Image.fromarray(img).save(folder / f"{c.lower()}_{i}.jpg", quality=95)


def write_oct_c8(root, per_class: int = 2, splits=("train", "val", "test"), rename=None):
    for split in splits:
        write_class_folders(root / split, OCT_CLASSES, per_class, rename=rename)
    return root


def write_kvasir(root, per_class: int = 2):
    write_class_folders(root, KVASIR_CLASSES, per_class)
    return root


MNMS_CSV = "External code,VendorName,Vendor,Centre,ED,ES,Pathology\n"


def mnms_volumes(shape=(12, 10, 3, 4), ed: int = 0, es: int = 2, seed: int = 0):
    """A cine volume and its labels: at ED slice 1 holds LV (rows 2..5, cols 2..5) and MYO
    (rows 6..7); at ES slice 2 holds RV (rows 2..4, cols 6..8); nothing else is labelled."""
    sa = np.random.default_rng(seed).uniform(0, 1000, shape).astype(np.float32)
    gt = np.zeros(shape, dtype=np.int16)
    gt[2:6, 2:6, 1, ed] = 1
    gt[6:8, 2:6, 1, ed] = 2
    gt[2:5, 6:9, 2, es] = 3
    return sa, gt


def write_nifti(path, arr: np.ndarray):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))
    return path


def write_mnms(root, subjects=(("A1K2P5", "A"), ("B0S3X1", "B")), folder=("Training", "Labeled"),
               *, ed: int = 0, es: int = 2):
    """An M&Ms OpenDataset copy: ``<folder>/<code>/<code>_sa(_gt).nii.gz`` per subject, the
    information CSV beside them, and an unlabelled subject that must not be read."""
    rows = []
    for i, (code, vendor) in enumerate(subjects):
        sa, gt = mnms_volumes(ed=ed, es=es, seed=i)
        sub = root.joinpath(*folder, code)
        write_nifti(sub / f"{code}_sa.nii.gz", sa)
        write_nifti(sub / f"{code}_sa_gt.nii.gz", gt)
        rows.append(f"{code},Vendor{vendor},{vendor},{i + 1},{ed},{es},NOR\n")
    unlabeled = root / "Training" / "Unlabeled" / "C9Z9Z9"
    unlabeled.mkdir(parents=True, exist_ok=True)
    (unlabeled / "C9Z9Z9_sa.nii.gz").write_bytes(b"never read")
    csv = root / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
    csv.write_text(MNMS_CSV + "".join(rows) + "C9Z9Z9,GE,C,4,0,1,NOR\n")
    return csv
