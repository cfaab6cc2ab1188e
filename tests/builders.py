"""Build ready image sets directly in canonical form (for tests that need sets, not importers)."""

import numpy as np

from imagesets import canonical
from imagesets.models import Image, ImageSet


def make_imageset(
    name: str,
    *,
    kind: str = ImageSet.Kind.REAL,
    n: int = 12,
    size: int = 16,
    channels: int = 1,
    seed: int = 0,
    split_of=lambda i: "test" if i % 2 else "train",
    provenance: dict | None = None,
    eight_bit: bool = False,
) -> ImageSet:
    """Random-texture images written as canonical PNGs. `eight_bit` writes 8-bit grayscale on purpose
    (a parity violation) instead of the canonical 16-bit."""
    from PIL import Image as PILImage

    imageset = ImageSet.objects.create(
        name=name,
        kind=kind,
        status=ImageSet.Status.READY,
        height=size,
        width=size,
        channels=channels,
        label_names=[],
        provenance=provenance or {},
        modality="other",
    )
    folder = imageset.folder / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        shape = (size, size) if channels == 1 else (size, size, channels)
        pixels = rng.random(shape, dtype=np.float32)
        if eight_bit:
            import io

            buffer = io.BytesIO()
            PILImage.fromarray((pixels * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
            data = buffer.getvalue()
        else:
            data = canonical.encode_image_png(pixels)
        path = folder / f"{i:06d}.png"
        path.write_bytes(data)
        rows.append(
            Image(
                imageset=imageset,
                index=i,
                subject=f"{name}-{i // 2}",
                split=split_of(i),
                file=str(path.relative_to(imageset.folder.parent.parent)),
                checksum=canonical.sha256(data),
            )
        )
    Image.objects.bulk_create(rows)
    return imageset
