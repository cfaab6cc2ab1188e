from django import forms
from django.conf import settings

from imagesets.importers import FORMATS


class ImportForm(forms.Form):
    SOURCE_CHOICES = [("server", "A folder on the server"), ("upload", "Upload a zip file")]

    name = forms.CharField(max_length=200)
    format = forms.ChoiceField(choices=[(k, f"{k}: {v}") for k, v in FORMATS.items()])
    source = forms.ChoiceField(choices=SOURCE_CHOICES, widget=forms.RadioSelect, initial="server")
    path = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Server folder inside an import root (for phantoms: 'cardiac' or 'liver').",
    )
    upload = forms.FileField(required=False, help_text="A zip of the dataset folder.")
    size = forms.IntegerField(
        min_value=16, max_value=1024, initial=128, help_text="Canonical size N: images are N x N."
    )
    skip_empty = forms.BooleanField(required=False, help_text="Drop slices whose mask has no foreground.")
    split_seed = forms.IntegerField(
        required=False,
        help_text="Re-split subjects into train/val/test with this seed (blank: the dataset's own split).",
    )
    val_fraction = forms.FloatField(min_value=0, max_value=0.9, initial=0.1)
    test_fraction = forms.FloatField(min_value=0, max_value=0.9, initial=0.2)
    subjects = forms.IntegerField(min_value=2, max_value=500, initial=24, help_text="Phantoms only.")
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Phantoms only.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean(self):
        data = super().clean()
        if data.get("format") == "phantom":
            data["source"] = "server"
            if not data.get("path"):
                data["path"] = "cardiac"
        elif data.get("source") == "server" and not data.get("path"):
            self.add_error("path", "Give the folder to import.")
        elif data.get("source") == "upload":
            upload = data.get("upload")
            if not upload:
                self.add_error("upload", "Choose a zip file to upload.")
            elif upload.size > settings.MAX_UPLOAD_BYTES:
                self.add_error("upload", f"The file is larger than the limit of {settings.MAX_UPLOAD_BYTES:,} bytes.")
        if (data.get("val_fraction") or 0) + (data.get("test_fraction") or 0) >= 1:
            self.add_error("test_fraction", "Validation and test fractions must add up to less than 1.")
        return data
