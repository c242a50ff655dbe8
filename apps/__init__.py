"""User-facing entry points: the ``mnet`` command line and the Gradio demo."""
