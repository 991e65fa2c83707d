"""TORCH: the model pieces that training, conversion and export share (the label-description
head: its numpy form and its torch modules). torch is imported inside the functions that need it."""
