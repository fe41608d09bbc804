"""Wire formats: marshmallow schemas for input and renderers for output, one module per dialect."""
