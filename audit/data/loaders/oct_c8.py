"""``oct-c8``: the Retinal OCT-C8 dataset of retinal OCT B-scans, 8 classes (DEeR's data).

Source: "Retinal OCT Image Classification - C8", O. S. Naren, Kaggle 2021
(kaggle.com/datasets/obulisainaren/retinal-oct-c8), used by DEeR (arXiv 2410.12926). 24,000
JPEG scans, split by its authors into train (18,400), val (2,800) and test (2,800). Layout
read (``path`` is the folder holding the three splits; the Kaggle archive nests it as
``RetinalOCT_Dataset/RetinalOCT_Dataset/``)::

    path/train/AMD/<name>.jpg
    path/train/CNV/ ... CSR/ DME/ DR/ DRUSEN/ MH/ NORMAL/
    path/val/<class>/<name>.jpg
    path/test/<class>/<name>.jpg

Labels are the index in :data:`CLASSES` (alphabetical, as the release lists them):
0 AMD, 1 CNV, 2 CSR, 3 DME, 4 DR, 5 DRUSEN, 6 MH, 7 NORMAL. The project's own choices are
those of :mod:`audit.data.loaders.class_folders` (case-insensitive folder names, classes
interleaved so ``limit`` stays balanced, centre crop and bicubic resize to ``size`` px, RGB
although the scans are grey); ``split`` folders also match case-insensitively.
"""

from __future__ import annotations

from audit.core.validation import check_options
from audit.data.loaders.class_folders import class_folder_dataset
from audit.data.loaders.image_folder import _directory

_NAME = "oct-c8"
CLASSES = ("AMD", "CNV", "CSR", "DME", "DR", "DRUSEN", "MH", "NORMAL")
SPLITS = ("train", "val", "test")


def oct_c8(*, path=None, split: str = "train", size: int = 32, limit: int | None = None):
    """Retinal OCT-C8 from its release folders: 8-class classification."""
    root = _directory(path, _NAME)
    split = check_options("split", f"dataset {_NAME!r}", split, SPLITS)
    return class_folder_dataset(_NAME, root, CLASSES, size=size, limit=limit, split=split,
                                source=f"Retinal OCT-C8 {split} split")
