"""The papers' datasets through ``fedaudit audit --dataset NAME --dataset-param path=...``
(issue 24, item 4): a malformed copy of each is exit 2 with one line naming the bad file and
nothing written; a well-formed copy audits (the loaders' own tests are in
tests/data/test_paper_datasets.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cli_run import run

FAST = ["--attack-param", "iterations=2", "--num-targets", "1", "--no-progress"]


def _tsroie(root):
    (root / "train").mkdir(parents=True)
    bad = root / "train" / "X51005200938.jpg"
    bad.write_bytes(b"\xff\xd8 truncated receipt")
    (root / "sroie_train_1011.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": bad.name}], "annotations": [],
         "categories": [{"id": 1, "name": "text"}, {"id": 2, "name": "text_temp"}]}))
    return bad


def _doctamper(root):
    bad = root / "DocTamperV1-TrainingSet" / "data.mdb"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an LMDB database" * 64)
    return bad


def _oct_c8(root):
    bad = root / "train" / "GLAUCOMA"
    bad.mkdir(parents=True)
    return bad


def _kvasir(root):
    bad = root / "polyp"  # the release's folder is polyps/
    bad.mkdir(parents=True)
    return bad


def _mnms(root):
    sub = root / "Training" / "Labeled" / "A1D0Q7"
    sub.mkdir(parents=True)
    bad = sub / "A1D0Q7_sa.nii.gz"
    bad.write_bytes(b"not a NIfTI volume")
    (sub / "A1D0Q7_sa_gt.nii.gz").write_bytes(b"not a NIfTI volume")
    (root / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv").write_text(
        "External code,VendorName,Vendor,Centre,ED,ES\nA1D0Q7,Siemens,A,1,0,9\n")
    return bad


@pytest.mark.parametrize("name, write", [("t-sroie", _tsroie), ("doctamper", _doctamper),
                                         ("oct-c8", _oct_c8), ("kvasir-v2", _kvasir),
                                         ("mnms", _mnms)])
def test_a_malformed_copy_exits_2_naming_the_bad_file(tmp_path, capsys, name, write):
    root = tmp_path / "copy"
    bad = write(root)
    out = tmp_path / "out"
    code, _, err = run(["audit", *FAST, "--dataset", name, "--dataset-param", f"path={root}",
                        "--out", str(out)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), err
    assert str(bad) in lines[0]
    assert not (out / "report.json").exists()


def test_a_kvasir_v2_copy_audits(tmp_path, capsys):
    from audit.data.loaders.kvasir_v2 import CLASSES

    root = tmp_path / "kvasir-dataset-v2"
    for k, c in enumerate(CLASSES):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((20, 24, 3), 30 * k + 5 * i, np.uint8)).save(root / c / f"{i}.jpg")
    out = tmp_path / "out"
    code, _, err = run(["audit", "--attack", "llg", "--dataset", "kvasir-v2", "--dataset-param",
                        f"path={root}", "--dataset-param", "size=16", "--num-targets", "2",
                        "--batch-size", "2", "--no-progress", "--out", str(out)], capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert "kvasir-v2" in json.dumps(report["command"])


def test_a_tsroie_copy_audits_as_tamper_segmentation(tmp_path, capsys):
    root = tmp_path / "T-SROIE"
    (root / "train").mkdir(parents=True)
    images, annotations = [], []
    for i in range(4):
        Image.fromarray(np.full((40, 48, 3), 200 - 20 * i, np.uint8)).save(root / "train" / f"X{i}.jpg")
        images.append({"id": i, "file_name": f"X{i}.jpg"})
        annotations.append({"id": i, "image_id": i, "category_id": 2,
                            "segmentation": [8, 4, 30, 4, 30, 12, 8, 12]})
    (root / "sroie_train_1011.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 2, "name": "text_temp"}]}))
    out = tmp_path / "out"
    code, _, err = run(["audit", *FAST, "--dataset", "t-sroie", "--dataset-param", f"path={root}",
                        "--dataset-param", "size=32", "--model", "unet", "--threat-model",
                        "hbc-server-labels", "--attack", "inverting-gradients", "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "report.json").is_file()
