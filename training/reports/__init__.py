"""Measuring models and data: evaluation on a split, paired comparisons, the retrieval
baseline and the nearest-training-shape ceiling, figures and previews, and reports."""
