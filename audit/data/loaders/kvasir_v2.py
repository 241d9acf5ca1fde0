"""``kvasir-v2``: the Kvasir v2 endoscopy images, 8 classes (DEeR's data).

Source: K. Pogorelov et al., "KVASIR: A Multi-Class Image Dataset for Computer Aided
Gastrointestinal Disease Detection", ACM MMSys 2017; ``kvasir-dataset-v2.zip`` from
datasets.simula.no/kvasir, used by DEeR (arXiv 2410.12926). 8,000 JPEG images, 1,000 a
class, with no official split. Layout read (``path`` is the folder the archive unpacks to)::

    path/dyed-lifted-polyps/<name>.jpg
    path/dyed-resection-margins/ esophagitis/ normal-cecum/ normal-pylorus/
    path/normal-z-line/ polyps/ ulcerative-colitis/

Labels are the index in :data:`CLASSES` (the release's folder names, alphabetical):
0 dyed-lifted-polyps, 1 dyed-resection-margins, 2 esophagitis, 3 normal-cecum,
4 normal-pylorus, 5 normal-z-line, 6 polyps, 7 ulcerative-colitis. The project's own choices
are those of :mod:`audit.data.loaders.class_folders` (case-insensitive folder names, classes
interleaved so ``limit`` stays balanced, centre crop and bicubic resize to ``size`` px). With
no official split there is no ``split`` parameter: the audit's client split divides the items.
"""

from __future__ import annotations

from audit.data.loaders.class_folders import class_folder_dataset
from audit.data.loaders.image_folder import _directory

_NAME = "kvasir-v2"
CLASSES = ("dyed-lifted-polyps", "dyed-resection-margins", "esophagitis", "normal-cecum",
           "normal-pylorus", "normal-z-line", "polyps", "ulcerative-colitis")


def kvasir_v2(*, path=None, size: int = 32, limit: int | None = None):
    """Kvasir v2 from its release folders: 8-class classification."""
    root = _directory(path, _NAME)
    return class_folder_dataset(_NAME, root, CLASSES, size=size, limit=limit,
                                source="Kvasir v2")
