"""fedaudit's own datasets: the ``builtin`` entry point of group ``fedaudit.datasets``."""

from __future__ import annotations

from audit.core.registry import Registry
from audit.data.embedded import digits, lfw, natural
from audit.data.generated.documents import documents
from audit.data.generated.purchase_synthetic import purchase_synthetic
from audit.data.generated.text_records import records
from audit.data.loaders.document_folder import document_folder
from audit.data.loaders.image_folder import cifar10, image_folder


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
    registry.register("documents", documents,
                      summary="generated receipts and forms (Faker + PIL): tamper masks to segment, PSI masks, template groups")
    registry.register("document-folder", document_folder,
                      summary="local document images with tamper masks (masks/) and optional PSI masks (psi/)")
    registry.register("records", records,
                      summary="generated per-client customer records (Faker) as byte tokens, with canary secrets")
