"""TORCH: a model folder to an ONNX graph and its int8 forms (optimum export, portable fusions,
the label-description head as graph nodes, quantization recipes), and an int8 session for the
bulk encoding that training's later stages need. Used by ``train`` and ``export``; imports
neither (checked by the import contracts in ``.importlinter``)."""
