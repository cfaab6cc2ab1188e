from django import forms
from django.contrib.auth import get_user_model

from accounts.models import RATERS_GROUP
from imagesets.models import ImageSet, Split
from turing.models import ResponseFormat, Study
from turing.services import STUDY_FIELDS

User = get_user_model()


class StudyForm(forms.ModelForm):
    sources = forms.ModelMultipleChoiceField(
        queryset=ImageSet.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Synthetic image sets that provide the generated images.",
    )
    generator_labels = forms.CharField(
        required=False,
        help_text="Generator label per chosen synthetic set, comma-separated in the order listed "
        "(blank: the set's architecture from its provenance, else its name).",
    )
    raters = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple, required=False
    )
    real_split = forms.ChoiceField(choices=Split.choices, initial="test")

    class Meta:
        model = Study
        fields = ["name", "real_imageset", *STUDY_FIELDS]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["real_imageset"].queryset = ImageSet.objects.ready().real()
        self.fields["real_imageset"].label = "Real image set"
        self.fields["sources"].queryset = ImageSet.objects.ready().synthetic()
        self.fields["raters"].queryset = User.objects.filter(groups__name=RATERS_GROUP).order_by("username")
        self.fields["response_format"].choices = ResponseFormat.choices
        if self.instance.pk:
            sources = list(self.instance.sources.order_by("pk"))
            self.initial["sources"] = [s.imageset_id for s in sources]
            self.initial["generator_labels"] = ", ".join(s.generator for s in sources)
            self.initial["raters"] = list(self.instance.raters.values_list("pk", flat=True))

    def clean(self):
        data = super().clean()
        sources = list(data.get("sources") or [])
        labels = [x.strip() for x in (data.get("generator_labels") or "").split(",") if x.strip()]
        if labels and len(labels) != len(sources):
            self.add_error("generator_labels", f"Give one label per chosen set ({len(sources)}), or none.")
        data["source_labels"] = labels or [
            str(s.provenance.get("architecture") or s.name) if s.provenance else s.name for s in sources
        ]
        return data
