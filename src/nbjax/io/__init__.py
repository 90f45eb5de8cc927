"""File formats read and written by nanoBragg: one module per format."""
