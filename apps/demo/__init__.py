"""The Gradio demo: every task live on a laptop or phone camera, plus uploads and a JSON endpoint."""
