"""Localizing photos on an orthophoto: ``search`` (one photo: its search crops and one pose), ``batch``
(many photos, one model) and ``job`` (a whole request: photos, output, progress; the CLI's and the worker's
entry point)."""
