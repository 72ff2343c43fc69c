"""One-off tools: converting the released segmentation network's weights, and remaking the
example pictures."""
