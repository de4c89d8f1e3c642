"""The app's services: the corrections store, background training jobs and the model versions command.

They sit between the app and the model: `app.py` (through `ui/`) calls them, they call `model/`,
and only the corrections store is also read by `training/` (to learn from corrections).
"""
