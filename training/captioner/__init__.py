"""Image captioning: EfficientNet-Lite0 encoder, word-LSTM decoder, in-graph beam search, export."""
