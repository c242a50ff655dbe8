"""One module per ``mnet`` sub-command."""
