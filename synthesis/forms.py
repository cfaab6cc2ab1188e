import json

from django import forms

from imagesets.models import ImageSet
from synthesis.gans.registry import GANS
from synthesis.presets import PRESETS

AUGMENT_CHOICES = [("", "preset default"), ("ada", "ADA (adaptive)"), ("diffaugment", "DiffAugment"), ("none", "none")]


BEST_BY_CHOICES = [
    ("", "preset default (authors': KID if the FID weights are installed, else SWD)"),
    ("swd", "SWD (sliced Wasserstein, no weights needed)"),
    ("kid", "KID"),
    ("fid", "FID"),
]


class RunForm(forms.Form):
    training_set = forms.ModelChoiceField(queryset=ImageSet.objects.none(), help_text="Trains on its train split.")
    arch = forms.ChoiceField(label="Architecture")
    preset = forms.ChoiceField(choices=[(k, v["title"]) for k, v in PRESETS.items()], initial="authors")
    name = forms.CharField(max_length=200, required=False)
    resolution = forms.IntegerField(required=False, help_text="Power of two, 32-256; blank: the set's size.")
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=4096)
    kimg = forms.FloatField(min_value=0.01, initial=10, help_text="Length: thousands of real images shown to D.")
    lr_g = forms.FloatField(required=False, min_value=0, label="G learning rate")
    lr_d = forms.FloatField(required=False, min_value=0, label="D learning rate")
    augment = forms.ChoiceField(choices=AUGMENT_CHOICES, required=False, label="Augmentation")
    best_by = forms.ChoiceField(
        choices=BEST_BY_CHOICES,
        required=False,
        label="Best checkpoint by",
        help_text="Measured on G_ema samples at every snapshot. KID and FID need the FID-Inception weights; "
        'choosing KID or FID computes both. The CPU preset uses SWD. {"feature_metrics": ["kid", "fid"]} in '
        "the options adds them to an SWD run.",
    )
    seed = forms.IntegerField(initial=0, min_value=0)
    extra = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='More options as JSON, e.g. {"snapshot_kimg": 5, "r1_gamma": 0.5, "amp": true}.',
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["training_set"].queryset = ImageSet.objects.filter(status=ImageSet.Status.READY)
        self.fields["arch"].choices = [(k, f"{v.title} ({k})") for k, v in sorted(GANS.items())]

    def clean_extra(self) -> dict:
        raw = self.cleaned_data.get("extra") or ""
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object of option names and values.")
        return value

    def overrides(self) -> dict:
        """The user's explicit choices on top of the chosen preset."""
        from synthesis.presets import preset_overrides

        data = self.cleaned_data
        out = preset_overrides(data["preset"], data["arch"])
        for key in ("resolution", "batch_size", "kimg", "lr_g", "lr_d", "seed"):
            if data.get(key) not in (None, ""):
                out[key] = data[key]
        if data.get("augment"):
            out["augment"] = data["augment"]
        if data.get("best_by"):
            out["metric"] = data["best_by"]
        out.update(data.get("extra") or {})
        return out


class SampleForm(forms.Form):
    checkpoint = forms.ChoiceField()
    count = forms.IntegerField(min_value=1, max_value=50_000, initial=100)
    name = forms.CharField(max_length=200)
    seed_start = forms.IntegerField(min_value=0, initial=0, help_text="Seeds seed_start, seed_start+1, ...")
    psi = forms.FloatField(min_value=0.01, max_value=1.0, initial=1.0, label="Truncation psi (StyleGAN)")

    def __init__(self, *args, run=None, **kwargs):
        super().__init__(*args, **kwargs)
        checkpoints = list(run.checkpoints.order_by("-step")) if run else []
        self.fields["checkpoint"].choices = [
            (
                c.pk,
                f"{c.kimg:.1f} kimg{' (best)' if c.is_best else ''}"
                f"{f' {run.best_metric_label} {c.metric * run.best_metric_scale:.2f}' if c.metric is not None else ''}",
            )
            for c in checkpoints
        ]
