"""Training the bundled networks and a user's own: the training entry point (train), named
configurations (presets), bundling a trained model for the add-on (bundle) and the
viewpoint estimator (viewpoint). Datasets are built by `training.data`, models measured by
`training.reports`; `training.tools` holds one-off tools."""
