from django import forms

from evaluation.models import METRIC_CHOICES, Evaluation
from imagesets.models import ImageSet, Split


class EvaluationForm(forms.Form):
    reference = forms.ModelChoiceField(queryset=ImageSet.objects.none(), help_text="A real image set.")
    candidates = forms.ModelMultipleChoiceField(
        queryset=ImageSet.objects.none(), widget=forms.CheckboxSelectMultiple, help_text="Synthetic sets to score."
    )
    metrics = forms.MultipleChoiceField(
        choices=METRIC_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["kid", "swd", "fid", "prdc"]
    )
    reference_split = forms.ChoiceField(
        choices=[("train", "train"), ("all", "all"), *[(s, s) for s in Split.values if s != "train"]],
        initial="train",
        help_text="Real images the distribution metrics compare against (usually what the GAN learned from).",
    )
    dice_arm = forms.ChoiceField(choices=Evaluation.DiceArm.choices[::2], initial=Evaluation.DiceArm.SYNTHETIC)
    dice_steps = forms.IntegerField(min_value=10, max_value=200_000, initial=400, help_text="U-Net optimiser steps.")
    dice_seeds = forms.CharField(initial="0", help_text="Comma-separated seeds; results are averaged over them.")
    include_baseline = forms.BooleanField(
        required=False, initial=True, help_text="Also train the U-Net on the real training split (the baseline)."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reference"].queryset = ImageSet.objects.ready().real()
        self.fields["candidates"].queryset = ImageSet.objects.ready().synthetic()

    def clean_dice_seeds(self) -> list[int]:
        try:
            seeds = [int(s) for s in self.cleaned_data["dice_seeds"].split(",") if s.strip()]
        except ValueError:
            raise forms.ValidationError("Seeds must be whole numbers separated by commas.") from None
        if not seeds:
            raise forms.ValidationError("Give at least one seed.")
        return seeds
