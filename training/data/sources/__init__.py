"""Shape sources for the data pipeline: each turns its input into `ShapeSpec`s."""
