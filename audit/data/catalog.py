"""fedaudit's own datasets: the ``builtin`` entry point of group ``fedaudit.datasets``."""

from __future__ import annotations

from audit.core.registry import Registry
from audit.data.embedded import digits, lfw, natural
from audit.data.generated.documents import documents
from audit.data.generated.purchase_synthetic import purchase_synthetic
from audit.data.generated.text_records import records
from audit.data.loaders.doctamper import doctamper
from audit.data.loaders.document_folder import document_folder
from audit.data.loaders.hf_disk import hf_disk
from audit.data.loaders.image_folder import cifar10, image_folder
from audit.data.loaders.jsonl_text import jsonl_text
from audit.data.loaders.kvasir_v2 import kvasir_v2
from audit.data.loaders.mnms import mnms
from audit.data.loaders.npz import npz
from audit.data.loaders.oct_c8 import oct_c8
from audit.data.loaders.t_sroie import t_sroie
from audit.data.loaders.table import table

#: the loaders of a user's files in the formats people keep: (name, factory, summary)
LOCAL_FILES = (
    ("npz", npz, "local NumPy .npz (path=): images or feature rows x, labels y, optional clients"),
    ("table", table, "local CSV or Parquet table (path=): label=, features=a,b,c, optional client_column="),
    ("hf-disk", hf_disk, "local Hugging Face dataset from save_to_disk (path=): image=, features= or text= columns"),
    ("jsonl-text", jsonl_text, "local JSONL text (path=), one object a line (text_key=, client_key=): byte tokens"),
)

#: the papers' datasets in their released on-disk layout, on a user's path: (name, factory, summary)
PAPER_DATASETS = (
    ("t-sroie", t_sroie, "T-SROIE receipts (FedRE) as released (path=, split=train|test): tampered-text masks from its COCO JSON"),
    ("doctamper", doctamper, "DocTamper (FedRE) LMDB parts (path=, split=train|test|fcd|scd; the [doctamper] extra): tamper masks"),
    ("oct-c8", oct_c8, "Retinal OCT-C8 (DEeR) class folders (path=, split=train|val|test): 8 retinal classes"),
    ("kvasir-v2", kvasir_v2, "Kvasir v2 (DEeR) class folders (path=): 8 endoscopy classes"),
    ("mnms", mnms, "M&Ms cardiac MRI (DEeR) NIfTI volumes (path=, split=train|val|test; the [medical] extra): LV/MYO/RV slices, vendor clients"),
)


def register(registry: Registry) -> None:
    """Register the embedded, generated and user-folder datasets."""
    registry.register("natural-32", natural(32, "natural-32"))
    registry.register("natural-64", natural(64, "natural-64"))
    registry.register("lfw", lfw)
    registry.register("digits", digits)
    registry.register("purchase-synthetic", purchase_synthetic,
                      summary="generated Purchase-style task: 600 binary features, 10 classes, atypical tail (membership leaks)")
    registry.register("image-folder", image_folder)
    registry.register("cifar10", cifar10)
    for name, factory, summary in LOCAL_FILES + PAPER_DATASETS:
        registry.register(name, factory, summary=summary)
    registry.register("documents", documents,
                      summary="generated receipts and forms (Faker + PIL): tamper masks to segment, PSI masks, template groups")
    registry.register("document-folder", document_folder,
                      summary="local document images with tamper masks (masks/) and optional PSI masks (psi/)")
    registry.register("records", records,
                      summary="generated per-client customer records (Faker) as byte tokens, with canary secrets")
