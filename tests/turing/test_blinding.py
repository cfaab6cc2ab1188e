"""Nothing but the decoded pixels may tell a rater which images are real.

Builds a study from real 16-bit images and generated ones, collects every rater-facing response
(pages, JSON, image bytes, headers, URLs, cookies) and compares them by class.
"""

import json
import re

import numpy as np
import pytest
from django.urls import reverse

from imagesets.models import ImageSet
from tests.builders import make_imageset
from turing import services
from turing.models import Assignment, ResponseFormat, StudyImage

pytestmark = pytest.mark.django_db

VOLATILE_HEADERS = {"Date"}
# JSON bodies carry the progress count, whose digits change the length; image bodies keep theirs.
JSON_VOLATILE = VOLATILE_HEADERS | {"Content-Length"}


def test_rater_facing_responses_differ_only_in_pixels(client, rater):
    real = make_imageset("Real ACDC-like set", n=24, seed=10, size=24)
    fake = make_imageset(
        "StyleGAN run 7 samples",
        kind=ImageSet.Kind.SYNTHETIC,
        n=24,
        seed=11,
        size=24,
        provenance={"architecture": "stylegan", "run_id": 7},
    )
    study = services.study_save(
        name="Blinded",
        real_imageset=real,
        sources=[services.SourceSpec(fake, "StyleGAN-secret-label")],
        raters=[rater],
        n_real=10,
        n_fake=10,
        seed=3,
        response_format=ResponseFormat.BINARY_CONFIDENCE,
        instructions="Rate each image.",
    )
    study = services.study_open(study=study)
    assignment = Assignment.objects.get(study=study)
    truth = {si.token: si.is_generated for si in StudyImage.objects.filter(study=study)}
    secrets_ = [fake.name, real.name, "StyleGAN-secret-label", "stylegan", str(real.uid), str(fake.uid)]
    secrets_ += [si.image.checksum for si in StudyImage.objects.filter(study=study).select_related("image")]
    secrets_ += [f"/imagesets/images/{si.image_id}.png" for si in StudyImage.objects.filter(study=study)]

    client.force_login(rater)
    page = client.get(reverse("turing:rate", args=[assignment.pk]))
    pages = [page.content.decode(), client.get(reverse("turing:my_studies")).content.decode()]
    observations = {True: [], False: []}
    for _ in range(20):
        trial = client.get(reverse("turing:trial", args=[assignment.pk]))
        state = trial.json()
        token = state["token"]
        image_url = reverse("turing:image", args=[token])
        image = client.get(image_url)
        body = image.content
        answer = client.post(
            reverse("turing:answer", args=[assignment.pk]),
            json.dumps({"token": token, "call": "real", "confidence": 3}),
            content_type="application/json",
        )
        pixels = np.frombuffer(body, dtype="<u2")
        observations[truth[token]].append(
            {
                "trial_keys": sorted(state),
                "trial_values": {k: v for k, v in state.items() if k not in ("token", "answered")},
                "trial_headers": {k: v for k, v in trial.headers.items() if k not in JSON_VOLATILE},
                "image_headers": {k: v for k, v in image.headers.items() if k not in VOLATILE_HEADERS},
                "image_length": len(body),
                "image_status": image.status_code,
                "url_shape": re.sub(r"[0-9a-f]{32}", "TOKEN", image_url),
                # The last answer ends the study (a different state, the same for both classes).
                "answer_keys": sorted(answer.json()) if not answer.json()["done"] else "last",
                "answer_feedback": answer.json().get("feedback"),
                "answer_headers": {k: v for k, v in answer.headers.items() if k not in JSON_VOLATILE},
                "cookies": sorted(image.cookies.keys()) + sorted(answer.cookies.keys()),
                "pixel_count": pixels.size,
            }
        )
        pages.append(trial.content.decode())
        assert re.fullmatch(r"[0-9a-f]{32}", token)

    assert len(observations[True]) == 10 and len(observations[False]) == 10

    # Every observable except pixels is identical across all trials of both classes.
    def canon(obs: dict) -> str:
        return json.dumps(obs, sort_keys=True)

    def without_last(obs: list[dict]) -> set[str]:
        return {canon(o) for o in obs if o["answer_keys"] != "last"}

    assert without_last(observations[True]) == without_last(observations[False])
    assert len(without_last(observations[True] + observations[False])) == 1
    sample = observations[True][0]
    assert sample["image_length"] == 24 * 24 * 2
    assert "ETag" not in sample["image_headers"] and "Last-Modified" not in sample["image_headers"]
    assert sample["image_headers"]["Cache-Control"] == "no-store, private"
    assert sample["answer_feedback"] is None
    # No set name, generator, file, checksum or image id anywhere a rater can read.
    for text in pages:
        for secret in secrets_:
            assert secret not in text, secret
    # The pixels survive the transport exactly (16-bit).
    si = StudyImage.objects.filter(study=study).first()
    from imagesets.canonical import decode_image_png

    expected = np.round(decode_image_png(str(si.image.path)) * 65535).astype("<u2")
    assert np.array_equal(np.frombuffer(si.blob_path.read_bytes(), dtype="<u2").reshape(24, 24), expected)
