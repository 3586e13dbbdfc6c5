"""Character-level LSTM text generator: vocabulary, model, training, evaluation, export."""
