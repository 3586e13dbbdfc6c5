"""talkative model-server: a model server that speaks TensorFlow Serving's protocol.

For hosts where TF Serving has no build (ARM laptops) and for the test suite. It
takes TF Serving's own flags and config files, serves the PredictionService and
ModelService gRPC APIs and the REST API over real SavedModels, and follows TF
Serving's documented and source behaviour; docs/model-server.md says which file
of tensorflow/serving each behaviour follows.
"""
